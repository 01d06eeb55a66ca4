import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hmacSha256 } from "../primitives/index.ts";
import { RATCHET_LENGTH, Ratchet } from "./ratchet.ts";

function seeded(counter: number): Ratchet {
  const bytes = new Uint8Array(RATCHET_LENGTH);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
  return new Ratchet(bytes, counter);
}

function stepTo(r: Ratchet, target: number): Ratchet {
  const copy = r.clone();
  while (copy.counter !== target) copy.advance();
  return copy;
}

describe("Megolm ratchet", () => {
  it("one step from a non-boundary rehashes only R3 with seed 3", () => {
    const r = seeded(0);
    const expected = hmacSha256(r.bytes.slice(96, 128), new Uint8Array([3]));
    const before = r.bytes.slice(0, 96);
    r.advance();
    assert.equal(r.counter, 1);
    assert.deepEqual(r.bytes.subarray(0, 96), before);
    assert.deepEqual(r.bytes.subarray(96), expected);
  });

  it("crossing 2^24 reseeds R1..R3 from the new R0", () => {
    const r = seeded(0xff_ffff);
    const oldR0 = r.bytes.slice(0, 32);
    r.advance();
    const newR0 = hmacSha256(oldR0, new Uint8Array([0]));
    assert.deepEqual(r.bytes.subarray(0, 32), newR0);
    for (let j = 1; j < 4; j++) {
      assert.deepEqual(r.bytes.subarray(j * 32, j * 32 + 32), hmacSha256(oldR0, new Uint8Array([j])));
    }
  });

  for (const [from, to] of [
    [0, 1],
    [0, 255],
    [0, 256],
    [3, 700],
    [0xfff0, 0x10010],
    [0xff_fff0, 0x100_0010],
    [0x1234_5678, 0x1234_5800],
    [0xffff_ff00, 0xffff_ffff],
  ] as const) {
    it(`advanceTo(${to}) from ${from} equals ${to - from} single steps`, () => {
      const start = seeded(from);
      const jumped = start.clone();
      jumped.advanceTo(to);
      const stepped = stepTo(start, to);
      assert.equal(jumped.counter, to);
      assert.deepEqual(jumped.bytes, stepped.bytes);
    });
  }

  it("jumps compose: 0 → 70 000 → 100 000 equals 0 → 100 000", () => {
    const a = seeded(0);
    a.advanceTo(70_000);
    a.advanceTo(100_000);
    const b = seeded(0);
    b.advanceTo(100_000);
    assert.deepEqual(a.bytes, b.bytes);
  });

  it("clone is independent and destroy wipes", () => {
    const a = seeded(5);
    const b = a.clone();
    b.advance();
    assert.equal(a.counter, 5);
    assert.notDeepEqual(a.bytes, b.bytes);
    b.destroy();
    assert.ok(b.bytes.every((x) => x === 0));
  });
});
