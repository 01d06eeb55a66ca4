/**
 * A room's `m.room.encryption` is a state event anyone with the power level (or a hostile server)
 * can send: it must not switch encryption off or to another algorithm once recorded, nor stretch
 * key rotation beyond the spec's defaults (a key that never rotates reads everything after a
 * member left, for as long as its holder keeps it).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RoomSettingsRecord } from "../../store/records.ts";
import { MEGOLM_ALGORITHM } from "../devices/device.ts";
import {
  DEFAULT_ROTATION_PERIOD_MESSAGES,
  DEFAULT_ROTATION_PERIOD_MS,
  MAX_ROTATION_PERIOD_MESSAGES,
  MAX_ROTATION_PERIOD_MS,
  MIN_ROTATION_PERIOD_MS,
  mergeRoomSettings,
  resolveSettings,
} from "./settings.ts";

const defaults = {
  verifyDevices: false,
  onlyVerifiedDevices: false,
  shareWith: "all" as const,
  errorOnVerifiedUserProblems: false,
};

describe("room encryption settings from a hostile state event", () => {
  it("clamps rotation to the spec's defaults at most and to the safe minima at least", () => {
    const resolve = (rotationPeriodMs: number, rotationPeriodMessages: number) => {
      const r = resolveSettings({ rotationPeriodMs, rotationPeriodMessages }, defaults);
      return [r.rotationPeriodMs, r.rotationPeriodMessages];
    };
    assert.equal(MAX_ROTATION_PERIOD_MS, DEFAULT_ROTATION_PERIOD_MS);
    assert.deepEqual(resolve(Number.MAX_SAFE_INTEGER, 1e12), [
      MAX_ROTATION_PERIOD_MS,
      MAX_ROTATION_PERIOD_MESSAGES,
    ]);
    assert.deepEqual(resolve(0, 0), [MIN_ROTATION_PERIOD_MS, 1]);
    assert.deepEqual(resolve(-1, -1), [MIN_ROTATION_PERIOD_MS, 1]);
    assert.deepEqual(resolve(Number.NaN, Number.POSITIVE_INFINITY), [
      DEFAULT_ROTATION_PERIOD_MS,
      DEFAULT_ROTATION_PERIOD_MESSAGES,
    ]);
    assert.deepEqual(resolve(MIN_ROTATION_PERIOD_MS + 0.5, 2.9), [MIN_ROTATION_PERIOD_MS, 2]);
  });

  it("keeps a recorded room's algorithm: another one is refused, none keeps it", () => {
    const stored: RoomSettingsRecord = { roomId: "!r:x", algorithm: MEGOLM_ALGORITHM };
    for (const algorithm of ["m.none", "m.olm.v1.curve25519-aes-sha2", ""]) {
      assert.throws(() => mergeRoomSettings("!r:x", stored, { algorithm }), { code: "ENCRYPTION_DOWNGRADE" });
    }
    assert.equal(mergeRoomSettings("!r:x", stored, {}).algorithm, MEGOLM_ALGORITHM);
    assert.equal(
      mergeRoomSettings("!r:x", stored, { rotationPeriodMessages: 5 }).algorithm,
      MEGOLM_ALGORITHM,
    );
  });

  it("takes each field from what is passed, else from what was recorded, and leaves out what neither gives", () => {
    const stored: RoomSettingsRecord = {
      roomId: "!r:x",
      algorithm: MEGOLM_ALGORITHM,
      rotationPeriodMs: MIN_ROTATION_PERIOD_MS,
      shareWith: "verified",
    };
    assert.deepEqual(mergeRoomSettings("!r:x", stored, { rotationPeriodMessages: 5, verifyDevices: false }), {
      roomId: "!r:x",
      algorithm: MEGOLM_ALGORITHM,
      rotationPeriodMs: MIN_ROTATION_PERIOD_MS,
      rotationPeriodMessages: 5,
      verifyDevices: false,
      shareWith: "verified",
    });
    assert.deepEqual(mergeRoomSettings("!r:x", stored, { shareWith: "all", senderRequirement: "refuse" }), {
      ...stored,
      shareWith: "all",
      senderRequirement: "refuse",
    });
    // No key with an undefined value: stores compare and serialise the record as it is.
    assert.deepEqual(Object.keys(mergeRoomSettings("!r:x", undefined, {})), ["roomId", "algorithm"]);
  });
});

describe("room settings from the app", () => {
  it("a value of the wrong kind is a typed BAD_ARGUMENT when recorded, and the machine goes on", async () => {
    const { FakeHomeserver, TestClient } = await import("../test-support/fake-homeserver.ts");
    const alice = await TestClient.create(new FakeHomeserver(), { userId: "@alice:x", deviceId: "A" });
    await alice.machine.setRoomSettings("!r:x", { algorithm: MEGOLM_ALGORITHM });
    await assert.rejects(
      alice.machine.setRoomSettings("!r:x", { shareWith: "crossSigned" as unknown as "cross_signed" }),
      { name: "E2eeError", code: "BAD_ARGUMENT" },
    );
    await alice.machine.setRoomSettings("!r:x", { shareWith: "cross_signed" });
    assert.equal((await alice.machine.getRoomSettings("!r:x"))?.shareWith, "cross_signed");
  });
});
