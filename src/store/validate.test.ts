import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { deviceKeysSchema } from "../wire/keys.ts";
import { StoreError } from "./errors.ts";
import { asJsonObject, type JsonObject, MAX_STORED_JSON_DEPTH } from "./json.ts";
import {
  hasDeviceKeysShape,
  MAX_STORED_ID_LENGTH,
  mergeOutboundSharing,
  onlyRatchet,
  parseAccount,
  parseBackupState,
  parseCrossSigningIdentity,
  parseDevice,
  parseInboundGroupSession,
  parseOlmSession,
  parseOutboundGroupSession,
  parseOutboundGroupSessionUpdate,
  parseOutgoingKeyRequest,
  parseQueuedRequest,
  parseReplay,
  parseRoomSettings,
  parseTrackedUser,
  parseWithheld,
} from "./validate.ts";

const parsers = [
  parseAccount,
  parseOlmSession,
  parseInboundGroupSession,
  parseOutboundGroupSession,
  parseOutboundGroupSessionUpdate,
  parseDevice,
  parseCrossSigningIdentity,
  parseTrackedUser,
  parseOutgoingKeyRequest,
  parseWithheld,
  parseReplay,
  parseRoomSettings,
  parseBackupState,
  parseQueuedRequest,
];

const isInvalid = (e: unknown): boolean => e instanceof StoreError && e.code === "INVALID_RECORD";

describe("record validation", () => {
  it("parsers throw only StoreError(INVALID_RECORD), whatever they are given", () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        for (const parse of parsers) {
          try {
            parse(v);
          } catch (e) {
            if (!isInvalid(e)) return false;
          }
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it("refuses wrong types, negative or fractional numbers, unknown states and huge IDs", () => {
    const ok = {
      userId: "@a:x",
      deviceId: "D",
      keys: { user_id: "@a:x", device_id: "D", algorithms: [], keys: { "curve25519:D": "c" } },
      curve25519Key: "c",
      ed25519Key: "e",
      trust: "unset",
      deleted: false,
    };
    assert.deepEqual(parseDevice(ok), ok);
    for (const bad of [
      { ...ok, trust: "trusted" },
      { ...ok, deleted: "no" },
      { ...ok, userId: "" },
      { ...ok, userId: "x".repeat(MAX_STORED_ID_LENGTH + 1) },
      { ...ok, keys: [] },
      { ...ok, keys: {} },
    ]) {
      assert.throws(() => parseDevice(bad), isInvalid);
    }
    const replay = { roomId: "!r", sessionId: "s", messageIndex: 1, eventId: "$e", timestamp: 2 };
    assert.throws(() => parseReplay({ ...replay, messageIndex: -1 }), isInvalid);
    assert.throws(() => parseReplay({ ...replay, messageIndex: 1.5 }), isInvalid);
  });

  it("outbound updates: merged without touching the stored lists, untouched parts shared", () => {
    const sharing = {
      sharedWith: { "@b:x": { B1: 0 }, "@c:x": { C1: 2 } },
      pendingShares: { r1: { "@d:x": { D1: 3 } }, r2: { "@e:x": { E1: 3 } } },
      withheldFrom: { "@f:x": ["F1"] },
    };
    const frozen = structuredClone(sharing);
    const ratchet = { roomId: "!r", sessionId: "s", pickle: { k: "v" }, messageCount: 4 };
    const u = parseOutboundGroupSessionUpdate({
      ...ratchet,
      addSharedWith: { "@b:x": { B2: 3 }, "@d:x": { D1: 3 } },
      settledShares: ["r1", "gone"],
      addPendingShares: { r3: { "@g:x": { G1: 4 } } },
      addWithheldFrom: { "@f:x": ["F1", "F2"] },
      extra: true,
    });
    assert.equal(onlyRatchet(u), false);
    const merged = mergeOutboundSharing(sharing, u);
    assert.deepEqual(merged, {
      sharedWith: { "@b:x": { B1: 0, B2: 3 }, "@c:x": { C1: 2 }, "@d:x": { D1: 3 } },
      pendingShares: { r2: { "@e:x": { E1: 3 } }, r3: { "@g:x": { G1: 4 } } },
      withheldFrom: { "@f:x": ["F1", "F2"] },
    });
    assert.deepEqual(sharing, frozen, "the input is not modified");
    assert.equal(merged.sharedWith["@c:x"], sharing.sharedWith["@c:x"]);
    // A message: nothing to merge, the very same lists come back.
    const message = parseOutboundGroupSessionUpdate(ratchet);
    const same = mergeOutboundSharing(sharing, message);
    assert.equal(onlyRatchet(message), true);
    assert.deepEqual(message, ratchet);
    assert.equal(same.sharedWith, sharing.sharedWith);
    assert.equal(same.pendingShares, sharing.pendingShares);
    assert.equal(same.withheldFrom, sharing.withheldFrom);
    for (const bad of [
      { ...ratchet, messageCount: 1.5 },
      { ...ratchet, addSharedWith: { "@b:x": { B: -1 } } },
      { ...ratchet, settledShares: "r1" },
      { ...ratchet, addPendingShares: { r: [] } },
      { ...ratchet, addWithheldFrom: { "@f:x": [1] } },
    ]) {
      assert.throws(() => parseOutboundGroupSessionUpdate(bad), isInvalid);
    }
  });

  it("drops unknown fields and keeps optional ones only when present", () => {
    const parsed = parseRoomSettings({ roomId: "!r", algorithm: "a", extra: 1, rotationPeriodMs: undefined });
    assert.deepEqual(parsed, { roomId: "!r", algorithm: "a" });
  });

  it("asJsonObject accepts plain JSON and refuses everything else", () => {
    assert.deepEqual(asJsonObject({ a: [1, "b", null, { c: true }] }), { a: [1, "b", null, { c: true }] });
    const nullProto = Object.assign(Object.create(null) as object, { a: 1 });
    assert.equal(asJsonObject(nullProto), nullProto);
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    let deep: unknown = {};
    for (let i = 0; i <= MAX_STORED_JSON_DEPTH + 1; i++) deep = { d: deep };
    for (const bad of [
      null,
      [],
      "s",
      { a: undefined },
      { a: Number.NaN },
      { a: Number.POSITIVE_INFINITY },
      { a: 1n },
      { a: () => 1 },
      { a: new Date(0) },
      { a: new Uint8Array(1) },
      { a: Symbol("s") },
      cyclic,
      deep,
    ]) {
      assert.throws(() => asJsonObject(bad), isInvalid);
    }
  });
});

describe("hasDeviceKeysShape", () => {
  const good = {
    user_id: "@a:x",
    device_id: "D",
    algorithms: ["m.olm.v1.curve25519-aes-sha2"],
    keys: { "curve25519:D": "c", "ed25519:D": "e" },
    signatures: { "@a:x": { "ed25519:D": "s" } },
    unsigned: { device_display_name: "phone", other: [1] },
    extra: { kept: true },
  };
  const agrees = (v: JsonObject) =>
    assert.equal(hasDeviceKeysShape(v), deviceKeysSchema.safeParse(v).success, JSON.stringify(v));

  it("accepts what deviceKeysSchema accepts and refuses what it refuses", () => {
    assert.equal(hasDeviceKeysShape(good), true);
    const variants: JsonObject[] = [
      good,
      { ...good, signatures: undefined, unsigned: undefined } as unknown as JsonObject,
      { ...good, user_id: 1 },
      { ...good, device_id: null },
      { ...good, algorithms: "x" },
      { ...good, algorithms: ["a", 2] },
      { ...good, keys: ["c"] },
      { ...good, keys: { a: 1 } },
      { ...good, keys: null },
      { ...good, signatures: null },
      { ...good, signatures: [] },
      { ...good, signatures: { "@a:x": ["s"] } },
      { ...good, signatures: { "@a:x": { k: 5 } } },
      { ...good, unsigned: null },
      { ...good, unsigned: [] },
      { ...good, unsigned: { device_display_name: 3 } },
      { ...good, unsigned: { device_display_name: null } },
    ];
    for (const v of variants) agrees(v);
    const { keys: _k, ...noKeys } = good;
    agrees(noKeys);
  });

  it("agrees with deviceKeysSchema on arbitrary JSON of the same outline", () => {
    const value = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null));
    const map = (v: fc.Arbitrary<unknown>) => fc.oneof(fc.dictionary(fc.string(), v), fc.array(v), value);
    fc.assert(
      fc.property(
        fc.record(
          {
            user_id: value,
            device_id: value,
            algorithms: fc.oneof(fc.array(value), value),
            keys: map(value),
            signatures: map(map(value)),
            unsigned: fc.oneof(fc.record({ device_display_name: value }, { requiredKeys: [] }), value),
          },
          { requiredKeys: [] },
        ),
        (v) => agrees(asJsonObject(v)),
      ),
    );
  });
});
