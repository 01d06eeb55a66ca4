// Key requests from our own verified device that arrive before we have an Olm session with it wait
// for one; at most MAX_PENDING_KEY_ANSWERS of them (the device can ask again: they are cheap to
// resend), so a device asking for every key we hold cannot grow the queue without end.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import {
  MAX_KEY_REQUESTS_PER_ROOM,
  MAX_KEY_REQUESTS_PER_SENDER,
  MAX_PENDING_KEY_ANSWERS,
} from "./manager.ts";

describe("answers waiting for an Olm session", () => {
  it("at most MAX_PENDING_KEY_ANSWERS are kept, and those are answered once a session exists", async () => {
    const hs = new FakeHomeserver();
    const a1 = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A1" });
    const a2 = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A2" });
    await a1.sync();
    await a2.sync();
    await a1.machine.setDeviceTrust("@alice:x", "A2", "verified");
    await a2.machine.setDeviceTrust("@alice:x", "A1", "verified");

    // A1 holds more keys than the bound, spread so A2's requests stay within its own bounds.
    const count = MAX_PENDING_KEY_ANSWERS + 100;
    const perGroup = Math.min(MAX_KEY_REQUESTS_PER_SENDER, MAX_KEY_REQUESTS_PER_ROOM);
    const sender = encodeBase64(randomBytes(32));
    const keys = Array.from({ length: count }, (_, i) => {
      const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
      const group = Math.floor(i / perGroup);
      return {
        roomId: `!r${group}:x`,
        sender: `@s${group}:x`,
        entry: {
          algorithm: "m.megolm.v1.aes-sha2",
          room_id: `!r${group}:x`,
          sender_key: sender,
          session_id: session.sessionId,
          session_key: session.exportAt(0),
          sender_claimed_keys: { ed25519: sender },
          forwarding_curve25519_key_chain: [],
        },
      };
    });
    assert.equal((await a1.machine.importRoomKeys(keys.map((k) => k.entry))).imported, count);

    // A2 asks for each (an event it cannot decrypt), all before A1 has an Olm session with it.
    for (const [i, k] of keys.entries()) {
      const event = {
        event_id: `$e${i}`,
        sender: k.sender,
        type: "m.room.encrypted",
        content: {
          algorithm: "m.megolm.v1.aes-sha2",
          ciphertext: "AwgAEhA",
          session_id: k.entry.session_id,
          device_id: "S",
        },
      };
      await assert.rejects(a2.machine.decryptRoomEvent(event, k.roomId), { code: "UNKNOWN_SESSION" });
    }
    await a2.flush();
    const asked = hs.sentToDevice.filter(
      (m) => m.eventType === "m.room_key_request" && m.to === "@alice:x|A1",
    );
    assert.equal(asked.length, count);

    const before = hs.sentToDevice.length;
    await a1.sync(); // takes the requests, claims a session with A2, answers those it kept
    const answers = hs.sentToDevice
      .slice(before)
      .filter((m) => m.from === "@alice:x" && m.to === "@alice:x|A2" && m.eventType === "m.room.encrypted");
    assert.equal(answers.length, MAX_PENDING_KEY_ANSWERS);
  });
});
