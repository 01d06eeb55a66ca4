/** The record of devices that started a new Olm session with us is bounded and survives junk. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCryptoStore } from "../../store/memory/memory-store.ts";
import type { DeviceRecord } from "../devices/device.ts";
import { emptyChanges, type MachineContext } from "../machine-context.ts";
import { MAX_RENEWED_DEVICES, MAX_RESHARES_PER_DEVICE, RenewedSessions } from "./renewed.ts";

const device = (deviceId: string, curve25519 = `curve${deviceId}`): DeviceRecord =>
  ({ userId: "@mallory:x", deviceId, curve25519Key: curve25519 }) as DeviceRecord;

async function context(now = 1000): Promise<MachineContext> {
  const store = await MemoryCryptoStore.open({ userId: "@alice:x", deviceId: "A" });
  return { userId: "@alice:x", deviceId: "A", store, now: () => now, tx: emptyChanges() };
}

describe("RenewedSessions", () => {
  it("remembers at most MAX_RENEWED_DEVICES devices, the newest, across a restart", async () => {
    const ctx = await context();
    const renewed = new RenewedSessions(ctx);
    const devices = Array.from({ length: MAX_RENEWED_DEVICES + 5 }, (_, i) => device(`D${i}`));
    for (const d of devices) await renewed.note(d);
    const saved = ctx.tx.customValues?.["keyroom.olm_renewed.v1"];
    assert.ok(Array.isArray(saved) && saved.length === MAX_RENEWED_DEVICES, "the saved record is bounded");
    await ctx.store.saveChanges(ctx.tx);
    ctx.tx = emptyChanges();
    const pending = await new RenewedSessions(ctx).toReshare(devices, "S", 0);
    assert.equal(pending.length, MAX_RENEWED_DEVICES);
    assert.equal(pending[0]?.deviceId, "D5", "the oldest were forgotten");
  });

  it("gives at most MAX_RESHARES_PER_DEVICE keys again per new session", async () => {
    const ctx = await context();
    const renewed = new RenewedSessions(ctx);
    const d = device("D");
    await renewed.note(d);
    for (let i = 0; i < MAX_RESHARES_PER_DEVICE; i++) {
      assert.equal((await renewed.toReshare([d], `S${i}`, 0)).length, 1);
      await renewed.reshared([d], `S${i}`);
      assert.equal((await renewed.toReshare([d], `S${i}`, 0)).length, 0, "once per key");
    }
    assert.equal((await renewed.toReshare([d], "one more", 0)).length, 0);
  });

  it("skips keys made after the new session, and a device under the same ID with another key", async () => {
    const ctx = await context(1000);
    const renewed = new RenewedSessions(ctx);
    await renewed.note(device("D"));
    assert.equal((await renewed.toReshare([device("D")], "S", 1001)).length, 0, "made later");
    assert.equal((await renewed.toReshare([device("D", "other")], "S", 0)).length, 0, "another key");
  });

  it("reads a damaged record as empty or drops its bad entries, never throwing", async () => {
    for (const junk of [null, 5, "x", {}, [1, null, { userId: "@a:x" }, ["@a:x", "D"]]]) {
      const ctx = await context();
      await ctx.store.saveChanges({ ...emptyChanges(), customValues: { "keyroom.olm_renewed.v1": junk } });
      assert.deepEqual(await new RenewedSessions(ctx).toReshare([device("D")], "S", 0), []);
    }
    const ctx = await context();
    const good = { userId: "@mallory:x", deviceId: "D", curve25519: "curveD", at: 5, done: ["S", 7] };
    await ctx.store.saveChanges({ ...emptyChanges(), customValues: { "keyroom.olm_renewed.v1": [good, 3] } });
    const renewed = new RenewedSessions(ctx);
    assert.equal((await renewed.toReshare([device("D")], "S", 0)).length, 0, "S was given again already");
    assert.equal((await renewed.toReshare([device("D")], "T", 0)).length, 1);
  });
});
