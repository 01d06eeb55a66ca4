/**
 * Larger property runs of the machine's inputs (`npm run test:long`): any JSON as a to-device event
 * or a room event, and JSON that is almost right (well-formed envelopes with hostile fields), gives
 * a typed outcome only, and genuine traffic still works afterwards with nothing stored changed.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DecryptionError } from "../../src/e2ee/errors.ts";
import { afterCase, makeWorld, ROOM, snapshot } from "./world.ts";

const RUNS = Number(process.env.KEYROOM_FUZZ_RUNS ?? 3000);

const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.constantFrom(
    "",
    "\uD800",
    "\uDFFF",
    "A".repeat(70_000),
    "m.megolm.v1.aes-sha2",
    "m.olm.v1.curve25519-aes-sha2",
  ),
);
const hostileJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    hostileString,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(hostileString, tie("value"), { maxKeys: 5 }),
  ),
})).value;

describe("machine inputs under fast-check (long)", () => {
  it("any to-device event: typed failures only, nothing stored changes", async () => {
    const w = await makeWorld();
    const state = await snapshot(w);
    const envelope = fc.record({
      type: fc.oneof(
        hostileString,
        fc.constantFrom("m.room.encrypted", "m.room_key_request", "m.room_key.withheld"),
      ),
      sender: fc.oneof(hostileString, fc.constantFrom("@alice:x", "@bob:x", "@mallory:x")),
      content: fc.oneof(
        hostileJson,
        fc.record({
          algorithm: fc.constantFrom("m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"),
          sender_key: hostileString,
          ciphertext: fc.dictionary(
            fc.constant(w.bob.machine.identityKeys.curve25519),
            fc.record({ type: fc.constantFrom(0, 1, 2), body: hostileString }),
          ),
          room_id: hostileString,
          session_id: hostileString,
          code: hostileString,
          action: fc.constantFrom("request", "request_cancellation"),
          request_id: hostileString,
          requesting_device_id: hostileString,
        }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(hostileJson, envelope), { maxLength: 5 }), async (toDevice) => {
        const result = await w.bob.machine.receiveSyncChanges({ toDevice });
        assert.deepEqual(result.roomKeys, []);
      }),
      { numRuns: RUNS },
    );
    await w.bob.flush();
    await afterCase(w, state);
  });

  it("any room event: DecryptionError only, nothing stored changes", async () => {
    const w = await makeWorld();
    const sessionId = (w.first.content as { session_id: string }).session_id;
    const state = await snapshot(w);
    const event = fc.record({
      event_id: fc.oneof(hostileString, fc.constant("$e")),
      sender: fc.oneof(hostileString, fc.constant("@alice:x")),
      type: fc.constant("m.room.encrypted"),
      content: fc.oneof(
        hostileJson,
        fc.record({
          algorithm: fc.constant("m.megolm.v1.aes-sha2"),
          ciphertext: hostileString,
          session_id: fc.oneof(hostileString, fc.constant(sessionId)),
          device_id: fc.oneof(hostileString, fc.constant("A")),
        }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(event, async (e) => {
        await assert.rejects(
          w.bob.machine.decryptRoomEvent(e as never, ROOM),
          (err) => err instanceof DecryptionError,
        );
      }),
      { numRuns: RUNS },
    );
    await w.bob.flush();
    await afterCase(w, state);
  });
});
