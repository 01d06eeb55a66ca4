import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decryptKeyExport, encryptKeyExport } from "../../crypto/key-export/index.ts";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

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

  it("exports a room's keys into a file another device imports", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.sync();
    const event = await alice.sendMessage("!r:x", joined("@alice:x", "@bob:x"), "exported history");
    await bob.sync();
    const keys = await bob.machine.exportRoomKeys(["!r:x", "!empty:x"]);
    assert.equal(keys.length, 1);
    const file = encryptKeyExport(keys, "passphrase", { rounds: 1000 });
    const bob2 = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B2" });
    const { imported } = await bob2.machine.importRoomKeys(decryptKeyExport(file, "passphrase"));
    assert.equal(imported, 1);
    await bob2.machine.updateTrackedUsers(["@alice:x"]);
    await bob2.flush();
    const decrypted = await bob2.machine.decryptRoomEvent(event, "!r:x");
    assert.equal(decrypted.content.body, "exported history");
    assert.equal(decrypted.senderDevice, "A");
    assert.equal(decrypted.trust, "unverified", "imported keys say who, not that it is verified");
  });
});
