import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePowerLevels, requiredPower, userPower } from "./room-auth.ts";
import { shouldReplace } from "./routes/key-backup.ts";
import { formatToken, parseToken } from "./sync.ts";

describe("power levels", () => {
  it("without a power_levels event the creator has 100 and state needs 0", () => {
    const pl = parsePowerLevels(undefined, "@c:x");
    assert.equal(userPower(pl, "@c:x"), 100);
    assert.equal(userPower(pl, "@o:x"), 0);
    assert.equal(requiredPower(pl, "m.room.name", true), 0);
  });
  it("uses the spec defaults for missing fields and ignores non-integers", () => {
    const pl = parsePowerLevels(
      { users: { "@a:x": 50, "@b:x": "100" }, events: { "m.room.name": 75 } },
      "@c:x",
    );
    assert.equal(userPower(pl, "@a:x"), 50);
    assert.equal(userPower(pl, "@b:x"), 0);
    assert.equal(requiredPower(pl, "m.room.name", true), 75);
    assert.equal(requiredPower(pl, "m.room.topic", true), 50);
    assert.equal(requiredPower(pl, "m.room.message", false), 0);
    assert.equal(pl.kick, 50);
    assert.equal(pl.invite, 0);
  });
});

describe("sync tokens", () => {
  it("round-trip and reject anything else", () => {
    const t = { pos: 42, toDevice: 40, typing: 3 };
    assert.deepEqual(parseToken(formatToken(t)), t);
    for (const bad of ["", "s1_2", "t5", "s1_2_3_4", "s-1_2_3", "s1_2_9999999999999999"]) {
      assert.throws(() => parseToken(bad), { code: "M_INVALID_PARAM" });
    }
  });
});

describe("key backup replacement", () => {
  const row = (fmi: number, fc: number, verified: boolean) => ({
    room_id: "!r",
    session_id: "s",
    first_message_index: fmi,
    forwarded_count: fc,
    is_verified: verified ? 1 : 0,
    session_data: "{}",
  });
  const key = (fmi: number, fc: number, verified: boolean) => ({
    first_message_index: fmi,
    forwarded_count: fc,
    is_verified: verified,
    session_data: {},
  });
  it("verified beats unverified, then lower first index, then fewer forwards", () => {
    assert.equal(shouldReplace(row(0, 0, false), key(5, 5, true)), true);
    assert.equal(shouldReplace(row(5, 5, true), key(0, 0, false)), false);
    assert.equal(shouldReplace(row(5, 0, false), key(4, 9, false)), true);
    assert.equal(shouldReplace(row(5, 2, false), key(5, 1, false)), true);
    assert.equal(shouldReplace(row(5, 1, false), key(5, 1, false)), false);
  });
});
