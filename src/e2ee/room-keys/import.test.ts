import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";

describe("importRoomKeys", () => {
  it("imports valid keys, skips bad entries, and decrypts pending events", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const session = OutboundGroupSession.create();
    const sessionKey = session.sessionKey();
    const ciphertext = session.encrypt(
      JSON.stringify({ type: "m.room.message", content: { body: "from the past" }, room_id: "!r:x" }),
    );
    const event = {
      event_id: "$old",
      sender: "@alice:x",
      type: "m.room.encrypted",
      content: {
        algorithm: "m.megolm.v1.aes-sha2",
        ciphertext,
        session_id: session.sessionId,
        device_id: "A",
      },
    };
    await assert.rejects(bob.machine.decryptRoomEvent(event, "!r:x"), { code: "UNKNOWN_SESSION" });
    const exported = {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: "!r:x",
      sender_key: "c2VuZGVyLWtleQ",
      session_id: session.sessionId,
      session_key: InboundGroupSession.fromSessionKey(sessionKey).exportAt(0),
      sender_claimed_keys: { ed25519: "ZWQ" },
      forwarding_curve25519_key_chain: [],
    };
    const progress: number[] = [];
    const result = await bob.machine.importRoomKeys(
      [exported, { ...exported, session_id: "wrong" }, { nonsense: true }, exported],
      (done) => progress.push(done),
    );
    assert.equal(result.imported, 1);
    assert.equal(result.total, 4);
    assert.deepEqual(progress, [4]);
    assert.equal(result.redecrypted[0]?.content.body, "from the past");
    assert.equal(result.redecrypted[0]?.trust, "unknown_device");
    await bob.restart();
    assert.equal((await bob.machine.decryptRoomEvent(event, "!r:x")).content.body, "from the past");
  });
});
