/** Hostile to-device events (Olm): each is dropped with its typed code, and nothing else changes. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { utf8Encode } from "../../src/crypto/primitives/index.ts";
import type { ToDeviceFailureCode } from "../../src/e2ee/errors.ts";
import { MAX_TO_DEVICE_CIPHERTEXT_BYTES } from "../../src/e2ee/limits.ts";
import { afterCase, LONE, LONG, makeWorld, snapshot, type World } from "./world.ts";

const OLM = "m.olm.v1.curve25519-aes-sha2";
type Build = (w: World) => unknown;

const envelope = (w: World, message: unknown, extra: Record<string, unknown> = {}) => ({
  type: "m.room.encrypted",
  sender: "@mallory:x",
  content: {
    algorithm: OLM,
    sender_key: w.mallory.curve25519,
    ciphertext: { [w.bob.machine.identityKeys.curve25519]: message },
    ...extra,
  },
});

/** A correctly encrypted message from Mallory whose payload is `payload` (object, or raw bytes). */
const sealed = (edit: (p: Record<string, unknown>, w: World) => unknown) => (w: World) =>
  w.mallory.encrypt(w.hs, w.bob, edit(w.mallory.payload(w.bob, "m.dummy", {}), w) as Record<string, unknown>);

const CASES: [string, ToDeviceFailureCode | "IGNORED", Build][] = [
  ["not an object", "IGNORED", () => "event"],
  ["null", "IGNORED", () => null],
  ["no type", "IGNORED", (w) => ({ ...envelope(w, {}), type: undefined })],
  ["type is a number", "IGNORED", (w) => ({ ...envelope(w, {}), type: 1 })],
  ["sender missing", "IGNORED", (w) => ({ ...envelope(w, {}), sender: undefined })],
  ["sender with a lone surrogate", "IGNORED", (w) => ({ ...envelope(w, {}), sender: `@m${LONE}:x` })],
  ["sender too long", "IGNORED", (w) => ({ ...envelope(w, {}), sender: `@${LONG}` })],
  ["content is an array", "IGNORED", (w) => ({ ...envelope(w, {}), content: [] })],
  ["no algorithm", "MALFORMED_EVENT", (w) => envelope(w, {}, { algorithm: undefined })],
  [
    "Megolm algorithm",
    "UNSUPPORTED_ALGORITHM",
    (w) => envelope(w, {}, { algorithm: "m.megolm.v1.aes-sha2" }),
  ],
  ["unknown algorithm", "UNSUPPORTED_ALGORITHM", (w) => envelope(w, {}, { algorithm: "m.olm.v2" })],
  ["no sender_key", "MALFORMED_EVENT", (w) => envelope(w, {}, { sender_key: undefined })],
  ["sender_key with a lone surrogate", "MALFORMED_EVENT", (w) => envelope(w, {}, { sender_key: LONE })],
  ["sender_key too long", "MALFORMED_EVENT", (w) => envelope(w, {}, { sender_key: LONG })],
  ["ciphertext is a string", "MALFORMED_EVENT", (w) => envelope(w, {}, { ciphertext: "x" })],
  [
    "ciphertext for someone else",
    "NOT_FOR_US",
    (w) => envelope(w, {}, { ciphertext: { other: { type: 0, body: "x" } } }),
  ],
  ["message type 2", "MALFORMED_EVENT", (w) => envelope(w, { type: 2, body: "AAAA" })],
  ["message type as string", "MALFORMED_EVENT", (w) => envelope(w, { type: "0", body: "AAAA" })],
  ["message body a number", "MALFORMED_EVENT", (w) => envelope(w, { type: 0, body: 1 })],
  ["message is null", "MALFORMED_EVENT", (w) => envelope(w, null)],
  [
    "body over the cap",
    "TOO_LARGE",
    (w) => envelope(w, { type: 0, body: "A".repeat(MAX_TO_DEVICE_CIPHERTEXT_BYTES + 1) }),
  ],
  ["body of 10 MB", "TOO_LARGE", (w) => envelope(w, { type: 1, body: "A".repeat(10 * 1024 * 1024) })],
  ["pre-key body garbage", "NO_SESSION", (w) => envelope(w, { type: 0, body: "AAAAAAAAAAAAAAAA" })],
  [
    "normal body garbage",
    "NO_SESSION",
    (w) => envelope(w, { type: 1, body: "AAAAAAAAAAAAAAAAAAAAAAAAAAAA" }),
  ],
  ["body not base64", "NO_SESSION", (w) => envelope(w, { type: 0, body: "!!!" })],
  ["plaintext not UTF-8", "BAD_PAYLOAD", (w) => w.mallory.encrypt(w.hs, w.bob, new Uint8Array([0xff, 0xfe]))],
  [
    "plaintext overlong UTF-8",
    "BAD_PAYLOAD",
    (w) => w.mallory.encrypt(w.hs, w.bob, new Uint8Array([0xc0, 0xaf])),
  ],
  [
    "plaintext UTF-8 surrogate",
    "BAD_PAYLOAD",
    (w) => w.mallory.encrypt(w.hs, w.bob, new Uint8Array([0xed, 0xa0, 0x80])),
  ],
  ["plaintext not JSON", "BAD_PAYLOAD", (w) => w.mallory.encrypt(w.hs, w.bob, utf8Encode("{nope"))],
  ["plaintext a JSON array", "BAD_PAYLOAD", (w) => w.mallory.encrypt(w.hs, w.bob, utf8Encode("[]"))],
  ["payload without type", "BAD_PAYLOAD", sealed((p) => ({ ...p, type: undefined }))],
  ["payload with empty type", "BAD_PAYLOAD", sealed((p) => ({ ...p, type: "" }))],
  ["payload content an array", "BAD_PAYLOAD", sealed((p) => ({ ...p, content: [] }))],
  ["payload without keys", "BAD_PAYLOAD", sealed((p) => ({ ...p, keys: undefined }))],
  ["payload sender with a lone surrogate", "BAD_PAYLOAD", sealed((p) => ({ ...p, sender: `@m${LONE}:x` }))],
  ["payload names another sender", "SENDER_MISMATCH", sealed((p) => ({ ...p, sender: "@alice:x" }))],
  ["payload names another recipient", "RECIPIENT_MISMATCH", sealed((p) => ({ ...p, recipient: "@carol:x" }))],
  [
    "payload names another recipient key",
    "RECIPIENT_MISMATCH",
    sealed((p, w) => ({ ...p, recipient_keys: { ed25519: w.alice.machine.identityKeys.ed25519 } })),
  ],
  [
    "payload claims Alice's Ed25519 key",
    "KEYS_MISMATCH",
    sealed((p, w) => ({ ...p, keys: { ed25519: w.alice.machine.identityKeys.ed25519 } })),
  ],
  [
    "payload names Alice's device",
    "KEYS_MISMATCH",
    sealed((p, w) => ({ ...p, sender_device: "M", keys: { ed25519: w.alice.machine.identityKeys.ed25519 } })),
  ],
  ["pre-key body with a lone surrogate", "MALFORMED_EVENT", (w) => envelope(w, { type: 0, body: "\uDFFF" })],
  [
    "normal body with a lone surrogate",
    "MALFORMED_EVENT",
    (w) => envelope(w, { type: 1, body: "AA\uD800AA" }),
  ],
  ["sender_key is a number", "MALFORMED_EVENT", (w) => envelope(w, {}, { sender_key: 5 })],
  ["ciphertext is null", "MALFORMED_EVENT", (w) => envelope(w, {}, { ciphertext: null })],
  ["payload without recipient_keys", "BAD_PAYLOAD", sealed((p) => ({ ...p, recipient_keys: undefined }))],
  ["payload content a string", "BAD_PAYLOAD", sealed((p) => ({ ...p, content: "x" }))],
  ["payload recipient a number", "BAD_PAYLOAD", sealed((p) => ({ ...p, recipient: 1 }))],
  ["payload with an empty Ed25519 key", "BAD_PAYLOAD", sealed((p) => ({ ...p, keys: { ed25519: "" } }))],
];

describe("hostile input: Olm to-device events", () => {
  let w: World;
  before(async () => {
    w = await makeWorld();
    // Bob knows Mallory's device, so her claimed keys can be checked.
    await w.bob.machine.updateTrackedUsers(["@mallory:x"]);
    await w.bob.flush();
  });
  for (const [name, code, build] of CASES) {
    it(`${name} → ${code}`, async () => {
      const state = await snapshot(w);
      const result = await w.bob.machine.receiveSyncChanges({ toDevice: [build(w)] });
      assert.deepEqual(
        result.failures.map((f) => f.code),
        code === "IGNORED" ? [] : [code],
      );
      assert.deepEqual(result.roomKeys, []);
      assert.ok(result.toDevice.every((e) => e.encryption === undefined || e.type === "m.dummy"));
      await afterCase(w, state);
    });
  }
  it("the same sealed message twice → REPLAYED or NO_SESSION the second time, never accepted twice", async () => {
    const state = await snapshot(w);
    const event = w.mallory.encrypt(w.hs, w.bob, w.mallory.payload(w.bob, "m.dummy", { n: 1 }));
    assert.deepEqual((await w.bob.machine.receiveSyncChanges({ toDevice: [event] })).failures, []);
    const again = await w.bob.machine.receiveSyncChanges({ toDevice: [event] });
    assert.equal(again.failures.length, 1);
    assert.ok(["REPLAYED", "NO_SESSION"].includes(again.failures[0]?.code ?? ""));
    await afterCase(w, state);
  });
});
