/** Outgoing key requests under a flood of events naming made-up sessions. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import {
  KEY_REQUEST_LIFETIME_MS,
  MAX_KEY_REQUESTS_PER_ROOM,
  MAX_KEY_REQUESTS_PER_SENDER,
  MAX_OUTGOING_KEY_REQUESTS,
} from "./manager.ts";

const ROOM = "!room:x";

function clock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

let counter = 0;
function junkEvent(sender: string) {
  counter++;
  return {
    event_id: `$junk${counter}`,
    sender,
    type: "m.room.encrypted",
    content: {
      algorithm: "m.megolm.v1.aes-sha2",
      ciphertext: "AwgAEhA",
      session_id: encodeBase64(randomBytes(32)),
      device_id: "M",
    },
  };
}

/** Session IDs Bob currently asks for (requests in the store). */
async function requested(bob: TestClient): Promise<Set<string>> {
  return new Set((await bob.store.getOutgoingKeyRequests()).map((r) => r.sessionId));
}

async function setup() {
  const time = clock();
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now: time.now });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: time.now });
  await bob.machine.updateTrackedUsers(["@alice:x"]);
  await bob.sync();
  return { time, hs, alice, bob };
}

/** An event of Alice's whose key Bob never received. */
async function lostKeyEvent(hs: FakeHomeserver, alice: TestClient) {
  await alice.machine.discardRoomKey(ROOM);
  const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "real");
  hs.device("@bob:x", "B").inbox.length = 0;
  return { event, sessionId: (event.content as { session_id: string }).session_id };
}

describe("outgoing key requests under a flood", () => {
  it("junk from one sender, in one room or many, never crowds out a real request (also after a restart)", async () => {
    const { hs, alice, bob } = await setup();
    for (let i = 0; i < MAX_OUTGOING_KEY_REQUESTS + 50; i++) {
      const room = i % 2 === 0 ? ROOM : `!other${i % 7}:x`;
      await assert.rejects(bob.machine.decryptRoomEvent(junkEvent("@mallory:x"), room), {
        code: "UNKNOWN_SESSION",
      });
    }
    assert.ok((await requested(bob)).size <= MAX_KEY_REQUESTS_PER_SENDER);
    const first = await lostKeyEvent(hs, alice);
    await assert.rejects(bob.machine.decryptRoomEvent(first.event, ROOM), { code: "UNKNOWN_SESSION" });
    assert.ok((await requested(bob)).has(first.sessionId), "the real key is requested");

    await bob.restart();
    for (let i = 0; i < MAX_KEY_REQUESTS_PER_SENDER * 2; i++) {
      await assert.rejects(bob.machine.decryptRoomEvent(junkEvent("@mallory:x"), ROOM), {
        code: "UNKNOWN_SESSION",
      });
    }
    const second = await lostKeyEvent(hs, alice);
    await assert.rejects(bob.machine.decryptRoomEvent(second.event, ROOM), { code: "UNKNOWN_SESSION" });
    const now = await requested(bob);
    assert.ok(now.has(second.sessionId));
    assert.ok(now.has(first.sessionId), "Mallory's flood did not push out Alice's earlier request");
  });

  it("junk from many made-up senders in one room leaves other rooms and a real sender alone", async () => {
    const { hs, alice, bob } = await setup();
    const real = await lostKeyEvent(hs, alice);
    await assert.rejects(bob.machine.decryptRoomEvent(real.event, ROOM), { code: "UNKNOWN_SESSION" });
    for (let i = 0; i < MAX_KEY_REQUESTS_PER_ROOM + 20; i++) {
      await assert.rejects(bob.machine.decryptRoomEvent(junkEvent(`@m${i % 5}:evil`), ROOM), {
        code: "UNKNOWN_SESSION",
      });
    }
    const now = await requested(bob);
    assert.ok(now.size <= MAX_KEY_REQUESTS_PER_ROOM);
    assert.ok(now.has(real.sessionId));
  });

  it("junk from many senders across many rooms stays within MAX_OUTGOING_KEY_REQUESTS overall", async () => {
    const { bob } = await setup();
    // Within each per-sender and per-room bound, past the overall one.
    const senders = 100;
    const rooms = 20;
    const events = MAX_OUTGOING_KEY_REQUESTS + 200;
    assert.ok(events / senders < MAX_KEY_REQUESTS_PER_SENDER && events / rooms < MAX_KEY_REQUESTS_PER_ROOM);
    for (let i = 0; i < events; i++) {
      await assert.rejects(
        bob.machine.decryptRoomEvent(junkEvent(`@m${i % senders}:evil`), `!r${i % rooms}:x`),
        {
          code: "UNKNOWN_SESSION",
        },
      );
    }
    assert.equal((await requested(bob)).size, MAX_OUTGOING_KEY_REQUESTS);
  });

  it("requests expire, so a full table empties by itself", async () => {
    const { time, bob } = await setup();
    for (let i = 0; i < 20; i++) {
      await assert.rejects(bob.machine.decryptRoomEvent(junkEvent("@mallory:x"), ROOM), {
        code: "UNKNOWN_SESSION",
      });
    }
    assert.equal((await requested(bob)).size, 20);
    time.advance(KEY_REQUEST_LIFETIME_MS + 1);
    await bob.restart();
    const fresh = junkEvent("@mallory:x");
    await assert.rejects(bob.machine.decryptRoomEvent(fresh, ROOM), { code: "UNKNOWN_SESSION" });
    assert.deepEqual([...(await requested(bob))], [fresh.content.session_id]);
  });
});
