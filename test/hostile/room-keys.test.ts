/** Hostile room keys and forwards: none lands, none replaces a key Bob holds. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../src/crypto/megolm/index.ts";
import { afterCase, LONE, LONG, makeWorld, ROOM, snapshot, type World } from "./world.ts";

const MEGOLM = "m.megolm.v1.aes-sha2";
const fresh = () => OutboundGroupSession.create();
const key = (s: OutboundGroupSession, extra: Record<string, unknown> = {}) => ({
  algorithm: MEGOLM,
  room_id: ROOM,
  session_id: s.sessionId,
  session_key: s.sessionKey(),
  ...extra,
});
/** Alice's session ID (the one Bob holds) with another session's key: a forgery. */
const aliceSessionId = (w: World) => (w.first.content as { session_id: string }).session_id;

type Build = (w: World) => { type: string; content: Record<string, unknown> };
const roomKey =
  (f: (w: World) => Record<string, unknown>): Build =>
  (w) => ({ type: "m.room_key", content: f(w) });
const forwarded =
  (f: (w: World) => Record<string, unknown>): Build =>
  (w) => ({ type: "m.forwarded_room_key", content: f(w) });
const forwardOf = (s: OutboundGroupSession, w: World, extra: Record<string, unknown> = {}) => ({
  algorithm: MEGOLM,
  room_id: ROOM,
  session_id: s.sessionId,
  session_key: InboundGroupSession.fromSessionKey(s.sessionKey()).exportAtFirstKnownIndex(),
  sender_key: w.alice.machine.identityKeys.curve25519,
  sender_claimed_ed25519_key: w.alice.machine.identityKeys.ed25519,
  forwarding_curve25519_key_chain: [],
  ...extra,
});

const CASES: [string, Build][] = [
  ["m.room_key with another algorithm", roomKey(() => key(fresh(), { algorithm: "m.megolm.v2" }))],
  ["m.room_key without room_id", roomKey(() => key(fresh(), { room_id: undefined }))],
  ["m.room_key with a lone surrogate in room_id", roomKey(() => key(fresh(), { room_id: `!r${LONE}:x` }))],
  ["m.room_key with a too long room_id", roomKey(() => key(fresh(), { room_id: `!${LONG}` }))],
  ["m.room_key with a lone surrogate in session_id", roomKey(() => key(fresh(), { session_id: LONE }))],
  [
    "m.room_key whose session_id does not match its key",
    roomKey(() => key(fresh(), { session_id: "other" })),
  ],
  ["m.room_key with a garbage session_key", roomKey(() => key(fresh(), { session_key: "AAAA" }))],
  ["m.room_key with an empty session_key", roomKey(() => key(fresh(), { session_key: "" }))],
  ["m.room_key with a session_key not base64", roomKey(() => key(fresh(), { session_key: "!!!" }))],
  [
    "m.room_key with an exported (unsigned) key",
    roomKey(() => {
      const s = fresh();
      return key(s, {
        session_key: InboundGroupSession.fromSessionKey(s.sessionKey()).exportAtFirstKnownIndex(),
      });
    }),
  ],
  [
    "m.room_key with a signature byte flipped",
    roomKey(() => {
      const s = fresh();
      const k = s.sessionKey();
      return key(s, { session_key: k.slice(0, -4) + (k.at(-4) === "A" ? "B" : "A") + k.slice(-3) });
    }),
  ],
  ["m.room_key with session_key a number", roomKey(() => key(fresh(), { session_key: 7 }))],
  ["m.room_key forging Alice's session ID", roomKey((w) => key(fresh(), { session_id: aliceSessionId(w) }))],
  ["m.forwarded_room_key nobody asked for", forwarded((w) => forwardOf(fresh(), w))],
  [
    "m.forwarded_room_key for Alice's session from another user",
    forwarded((w) => forwardOf(fresh(), w, { session_id: aliceSessionId(w) })),
  ],
  [
    "m.forwarded_room_key with a long chain",
    forwarded((w) => forwardOf(fresh(), w, { forwarding_curve25519_key_chain: Array(100).fill("k") })),
  ],
  [
    "m.forwarded_room_key with a lone surrogate sender_key",
    forwarded((w) => forwardOf(fresh(), w, { sender_key: LONE })),
  ],
  [
    "m.forwarded_room_key without sender_claimed_ed25519_key",
    forwarded((w) => forwardOf(fresh(), w, { sender_claimed_ed25519_key: undefined })),
  ],
  [
    "m.forwarded_room_key with a garbage key",
    forwarded((w) => forwardOf(fresh(), w, { session_key: "AAAA" })),
  ],
  [
    "m.forwarded_room_key with the wrong algorithm",
    forwarded((w) => forwardOf(fresh(), w, { algorithm: "x" })),
  ],
];

describe("hostile input: room keys and forwards", () => {
  let w: World;
  before(async () => {
    w = await makeWorld();
  });
  for (const [name, build] of CASES) {
    it(`${name} → not stored`, async () => {
      const state = await snapshot(w);
      const count = await w.bob.machine.roomKeyCount();
      const { type, content } = build(w);
      const { request } = await (async () => {
        // Mallory sends it over a proper Olm session (she is a real device Bob can attribute).
        const event = w.mallory.encrypt(w.hs, w.bob, w.mallory.payload(w.bob, type, content));
        const result = await w.bob.machine.receiveSyncChanges({ toDevice: [event] });
        assert.deepEqual(result.failures, []);
        assert.deepEqual(result.roomKeys, []);
        return { request: undefined };
      })();
      void request;
      assert.equal(await w.bob.machine.roomKeyCount(), count);
      await afterCase(w, state);
    });
  }
  it("a plaintext m.room_key (not over Olm) → ignored", async () => {
    const state = await snapshot(w);
    const s = fresh();
    const result = await w.bob.machine.receiveSyncChanges({
      toDevice: [{ type: "m.room_key", sender: "@alice:x", content: key(s) }],
    });
    assert.deepEqual(result.roomKeys, []);
    await afterCase(w, state);
  });
  it("a key export naming a lone-surrogate room → skipped, the rest imported", async () => {
    const state = await snapshot(w);
    const s = fresh();
    const entry = {
      algorithm: MEGOLM,
      room_id: `!r${LONE}:x`,
      sender_key: w.alice.machine.identityKeys.curve25519,
      session_id: s.sessionId,
      session_key: InboundGroupSession.fromSessionKey(s.sessionKey()).exportAtFirstKnownIndex(),
      sender_claimed_keys: { ed25519: w.alice.machine.identityKeys.ed25519 },
      forwarding_curve25519_key_chain: [],
    };
    const result = await w.bob.machine.importRoomKeys([entry]);
    assert.equal(result.imported, 0);
    await afterCase(w, state);
  });
});
