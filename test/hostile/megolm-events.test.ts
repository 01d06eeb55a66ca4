/** Hostile room events (Megolm): every malformed or forged event fails with its typed code. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { DecryptionError, type DecryptionFailureCode } from "../../src/e2ee/errors.ts";
import { MAX_ROOM_EVENT_CIPHERTEXT_BYTES } from "../../src/e2ee/limits.ts";
import { afterCase, LONE, LONG, makeWorld, ROOM, snapshot, type World } from "./world.ts";

type Mutation = (event: { [k: string]: unknown; content: { [k: string]: unknown } }) => unknown;

const flip = (s: string, at: number): string =>
  s.slice(0, at) + (s[at] === "A" ? "B" : "A") + s.slice(at + 1);

const CASES: [string, DecryptionFailureCode, Mutation][] = [
  ["content is null", "MALFORMED_EVENT", (e) => ({ ...e, content: null })],
  ["content is a string", "MALFORMED_EVENT", (e) => ({ ...e, content: "x" })],
  ["content is an array", "MALFORMED_EVENT", (e) => ({ ...e, content: [] })],
  ["no algorithm", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, algorithm: undefined } })],
  ["algorithm is a number", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, algorithm: 1 } })],
  [
    "another algorithm",
    "UNSUPPORTED_ALGORITHM",
    (e) => ({ ...e, content: { ...e.content, algorithm: "m.megolm.v2" } }),
  ],
  [
    "Olm algorithm in a room",
    "UNSUPPORTED_ALGORITHM",
    (e) => ({ ...e, content: { ...e.content, algorithm: "m.olm.v1.curve25519-aes-sha2" } }),
  ],
  ["no ciphertext", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, ciphertext: undefined } })],
  [
    "ciphertext is an object",
    "MALFORMED_EVENT",
    (e) => ({ ...e, content: { ...e.content, ciphertext: {} } }),
  ],
  ["ciphertext is a number", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, ciphertext: 7 } })],
  ["no session_id", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, session_id: undefined } })],
  ["empty session_id", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, session_id: "" } })],
  ["session_id too long", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, session_id: LONG } })],
  [
    "session_id with a lone surrogate",
    "MALFORMED_EVENT",
    (e) => ({ ...e, content: { ...e.content, session_id: `s${LONE}` } }),
  ],
  ["session_id is a number", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, session_id: 5 } })],
  ["device_id is a number", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, device_id: 5 } })],
  ["device_id empty", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, device_id: "" } })],
  [
    "device_id with a lone surrogate",
    "MALFORMED_EVENT",
    (e) => ({ ...e, content: { ...e.content, device_id: LONE } }),
  ],
  ["sender_key is a number", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, sender_key: 1 } })],
  ["event_id missing", "MALFORMED_EVENT", (e) => ({ ...e, event_id: undefined })],
  ["event_id too long", "MALFORMED_EVENT", (e) => ({ ...e, event_id: `$${LONG}` })],
  ["event_id with a lone surrogate", "MALFORMED_EVENT", (e) => ({ ...e, event_id: `$${LONE}` })],
  ["sender missing", "MALFORMED_EVENT", (e) => ({ ...e, sender: undefined })],
  ["sender with a lone surrogate", "MALFORMED_EVENT", (e) => ({ ...e, sender: `@a${LONE}:x` })],
  [
    "ciphertext one byte over the cap",
    "TOO_LARGE",
    (e) => ({ ...e, content: { ...e.content, ciphertext: "A".repeat(MAX_ROOM_EVENT_CIPHERTEXT_BYTES + 1) } }),
  ],
  [
    "ciphertext of 10 MB",
    "TOO_LARGE",
    (e) => ({ ...e, content: { ...e.content, ciphertext: "A".repeat(10 * 1024 * 1024) } }),
  ],
  [
    "unknown session",
    "UNKNOWN_SESSION",
    (e) => ({ ...e, event_id: "$u1", content: { ...e.content, session_id: "nonexistent" } }),
  ],
  ["the event in another room", "UNKNOWN_SESSION", (e) => ({ ...e, __room: "!other:x" })],
  [
    "ciphertext not base64",
    "MALFORMED_EVENT",
    (e) => ({ ...e, content: { ...e.content, ciphertext: "!!!!" } }),
  ],
  ["ciphertext empty", "MALFORMED_EVENT", (e) => ({ ...e, content: { ...e.content, ciphertext: "" } })],
  [
    "ciphertext truncated",
    "MALFORMED_EVENT",
    (e) => ({ ...e, content: { ...e.content, ciphertext: String(e.content.ciphertext).slice(0, 20) } }),
  ],
  [
    "ciphertext body byte flipped",
    "BAD_SIGNATURE",
    (e) => ({ ...e, content: { ...e.content, ciphertext: flip(String(e.content.ciphertext), 20) } }),
  ],
  [
    "ciphertext signature byte flipped",
    "BAD_SIGNATURE",
    (e) => ({
      ...e,
      content: {
        ...e.content,
        ciphertext: flip(String(e.content.ciphertext), String(e.content.ciphertext).length - 5),
      },
    }),
  ],
  [
    "ciphertext MAC byte flipped",
    "BAD_SIGNATURE",
    (e) => ({
      ...e,
      content: {
        ...e.content,
        ciphertext: flip(String(e.content.ciphertext), String(e.content.ciphertext).length - 95),
      },
    }),
  ],
  ["replayed under another event ID", "REPLAYED", (e) => ({ ...e, event_id: "$replay" })],
];

describe("hostile input: Megolm room events", () => {
  let w: World;
  before(async () => {
    w = await makeWorld();
  });
  for (const [name, code, mutate] of CASES) {
    it(`${name} → ${code}`, async () => {
      const genuine = await w.alice.sendMessage(
        ROOM,
        [
          { userId: "@alice:x", membership: "join" },
          { userId: "@bob:x", membership: "join" },
        ],
        name,
      );
      await w.bob.sync();
      if (code === "REPLAYED") await w.bob.machine.decryptRoomEvent(genuine, ROOM);
      const state = await snapshot(w);
      const mutated = mutate(structuredClone(genuine) as never) as { __room?: string };
      const room = mutated?.__room ?? ROOM;
      await assert.rejects(
        w.bob.machine.decryptRoomEvent(mutated as never, room),
        (e) => e instanceof DecryptionError && e.code === code,
      );
      await afterCase(w, state);
      // The genuine event itself still decrypts (no forgery claimed its index).
      assert.equal((await w.bob.machine.decryptRoomEvent(genuine, ROOM)).content.body, name);
    });
  }
});
