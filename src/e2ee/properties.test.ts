/**
 * Whatever arrives from the network, the machine answers with typed outcomes: failures in the
 * sync result, `DecryptionError` for room events, `E2eeError("BAD_RESPONSE")` for HTTP bodies.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DecryptionError, E2eeError } from "./errors.ts";
import { FakeHomeserver, joined, TestClient } from "./test-support/fake-homeserver.ts";

const ROOM = "!room:x";

async function pairWithMessage() {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  await bob.sync();
  const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "seed");
  await bob.sync();
  return { hs, alice, bob, event };
}

const jsonish = fc.jsonValue({ maxDepth: 3 });

describe("untrusted input never escapes as an untyped error", () => {
  it("to-device events", async () => {
    const { alice, bob } = await pairWithMessage();
    const ourKey = bob.machine.identityKeys.curve25519;
    const olmContent = fc.record({
      algorithm: fc.constantFrom("m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2", "x"),
      sender_key: fc.oneof(fc.constant(alice.machine.identityKeys.curve25519), fc.base64String()),
      ciphertext: fc.oneof(
        fc.dictionary(fc.string(), jsonish),
        fc.record({
          [ourKey]: fc.record({
            type: fc.oneof(fc.constantFrom(0, 1), jsonish),
            body: fc.oneof(fc.base64String(), jsonish),
          }),
        }),
      ),
    });
    const event = fc.record({
      type: fc.constantFrom("m.room.encrypted", "m.room_key_request", "m.room_key.withheld", "m.other"),
      sender: fc.constantFrom("@alice:x", "@bob:x", "@eve:x"),
      content: fc.oneof(olmContent, fc.dictionary(fc.string(), jsonish)),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(event, jsonish), { maxLength: 4 }), async (toDevice) => {
        const result = await bob.machine.receiveSyncChanges({ toDevice });
        assert.ok(result.toDevice.length + result.failures.length <= toDevice.length);
      }),
      { numRuns: 150 },
    );
  });

  it("room events", async () => {
    const { bob, event } = await pairWithMessage();
    const content = event.content as Record<string, unknown>;
    const mutated = fc.record({
      algorithm: fc.constantFrom("m.megolm.v1.aes-sha2", "other"),
      ciphertext: fc.oneof(fc.base64String(), fc.constant(content.ciphertext), jsonish),
      session_id: fc.oneof(fc.constant(content.session_id), fc.string()),
      device_id: fc.oneof(fc.constant("A"), fc.string()),
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, jsonish), fc.string(), async (c, eventId) => {
        try {
          await bob.machine.decryptRoomEvent(
            { event_id: eventId, sender: "@alice:x", type: "m.room.encrypted", content: c },
            ROOM,
          );
        } catch (e) {
          assert.ok(e instanceof DecryptionError, String(e));
        }
      }),
      { numRuns: 200 },
    );
  });

  it("HTTP response bodies", async () => {
    const { bob } = await pairWithMessage();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(jsonish, async (response) => {
        await bob.machine.updateTrackedUsers([`@u${n++}:x`]);
        const requests = await bob.machine.outgoingRequests();
        for (const r of requests) {
          try {
            await bob.machine.markRequestAsSent(r, response);
          } catch (e) {
            assert.ok(e instanceof E2eeError && e.code === "BAD_RESPONSE", String(e));
          }
        }
      }),
      { numRuns: 60 },
    );
  });
});
