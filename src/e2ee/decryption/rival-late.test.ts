/**
 * A member re-shared someone else's session to us before its creator did: the creator's events
 * read meanwhile fail `MISMATCHED_SENDER`, and are decrypted once the creator's own share arrives.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { FakeHomeserver, megolmEventIn, TestClient } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:x";

async function shareToBob(from: TestClient, session: OutboundGroupSession): Promise<void> {
  const { request } = await from.machine.encryptToDevice(
    "m.room_key",
    [{ userId: "@bob:x", deviceId: "B" }],
    {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: ROOM,
      session_id: session.sessionId,
      session_key: session.sessionKey(),
    },
  );
  assert.ok(request);
  await from.send(request);
}

describe("an event read while only a re-shared copy of its session was held", () => {
  it("is decrypted (redecrypted) when the creator's own share arrives", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const mallory = await TestClient.create(hs, { userId: "@mallory:x", deviceId: "M" });
    await bob.machine.updateTrackedUsers(["@alice:x", "@mallory:x"]);
    await bob.sync();
    for (const c of [alice, mallory]) {
      await c.machine.updateTrackedUsers(["@bob:x"]);
      await c.flush();
      const claim = await c.machine.getMissingSessions(["@bob:x"]);
      if (claim !== undefined) await c.send(claim);
    }
    const session = OutboundGroupSession.create();
    // Mallory's copy of Alice's session reaches Bob first (the server held Alice's share back).
    await shareToBob(mallory, session);
    await bob.sync();
    const event = megolmEventIn(session, ROOM, "@alice:x", "A", "hello");
    const early = await bob.machine.tryDecryptRoomEvent(event, ROOM);
    assert.equal(early.ok ? "ok" : early.error.code, "MISMATCHED_SENDER");
    // Alice's own share arrives in the next sync: the event she sent reads now, as hers.
    await shareToBob(alice, session);
    const synced = await bob.sync();
    assert.deepEqual(
      synced.redecrypted.map((e) => [e.eventId, e.content.body, e.senderDevice]),
      [[event.event_id, "hello", "A"]],
    );
  });
});
