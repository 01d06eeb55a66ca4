// An encrypted room event still may carry the deprecated `sender_key`, which nothing checks: it is
// only passed on in the key request for a session we lack. Anyone in the room could put a string
// there that the store does not keep (a lone surrogate, or past its longest string), and the step
// that decrypted the timeline failed on saving the request, on every retry.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_STORED_ID_LENGTH } from "../../store/validate.ts";
import { bobTrackingAlice, joined } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:x";

describe("a hostile sender_key on an event whose session we lack", () => {
  for (const [name, senderKey] of [
    ["a lone surrogate", "k\ud800"],
    ["longer than the store keeps", "k".repeat(MAX_STORED_ID_LENGTH + 1)],
  ] as const) {
    it(`${name}: the event fails UNKNOWN_SESSION, the step saves, the key is still asked for`, async () => {
      const { alice, bob } = await bobTrackingAlice();
      // Alice's event in a session she shared with nobody: Bob lacks the key.
      const real = await alice.sendMessage(ROOM, joined("@alice:x"), "hidden");
      const content: Record<string, unknown> = {
        ...(real.content as Record<string, unknown>),
        sender_key: senderKey,
      };
      const [outcome] = await bob.machine.tryDecryptRoomEvents([
        { event: { ...real, content }, roomId: ROOM },
      ]);
      assert.equal(outcome?.ok, false);
      assert.equal(outcome.ok === false && outcome.error.code, "UNKNOWN_SESSION");
      await bob.flush();
      // The request was saved, without the sender_key the store could not keep.
      const asked = await bob.store.getOutgoingKeyRequests();
      assert.deepEqual(
        asked.map((r) => [r.roomId, r.sessionId, r.senderKey]),
        [[ROOM, content.session_id, ""]],
      );
      await bob.restart();
      assert.equal((await bob.store.getOutgoingKeyRequests()).length, 1);
    });
  }
});
