/**
 * The stored to-device queue under a homeserver that floods us with requests and refuses every
 * `/sendToDevice`. Key and secret requests travel unencrypted: the server can send any number
 * naming one of our own verified devices, and each was answered, so the queue grew with every
 * sync. Replies stay within MAX_QUEUED_REPLIES (one per request, however often it is repeated),
 * our own key requests within MAX_OUTGOING_KEY_REQUESTS, and a room key share is always queued.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../crypto/megolm/index.ts";
import { encodeBase64, randomBytes } from "../crypto/primitives/index.ts";
import {
  MAX_KEY_REQUESTS_PER_ROOM,
  MAX_KEY_REQUESTS_PER_SENDER,
  MAX_OUTGOING_KEY_REQUESTS,
} from "./key-requests/manager.ts";
import { emptyChanges } from "./machine-context.ts";
import { BACKUP_SECRET } from "./secret-storage/names.ts";
import { FakeHomeserver, joined, TestClient } from "./test-support/fake-homeserver.ts";
import { MAX_QUEUED_REPLIES, queuedToDevice } from "./to-device-queue.ts";

const BOB = "@bob:x";
const ROOM = "!room:x";

/** Sends everything but to-device messages (the server refuses those), until nothing else is left. */
async function flushRefusingToDevice(client: TestClient): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const requests = (await client.machine.outgoingRequests()).filter((r) => r.type !== "to_device");
    if (requests.length === 0) return;
    for (const r of requests) await client.send(r);
  }
  throw new Error("outgoing requests did not settle");
}

async function queued(client: TestClient) {
  return (await client.store.getQueuedRequests()).map((r) => {
    const q = queuedToDevice(r);
    assert.ok(q !== undefined);
    return q;
  });
}

/** Bob (device B) holding a room key and the backup key, and his verified device B2. */
async function setup() {
  const hs = new FakeHomeserver();
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "B" });
  const b2 = await TestClient.create(hs, { userId: BOB, deviceId: "B2" });
  await bob.store.saveChanges({
    ...emptyChanges(),
    secrets: { [BACKUP_SECRET]: encodeBase64(randomBytes(32)) },
  });
  await bob.restart();
  await bob.machine.updateTrackedUsers([BOB]);
  await bob.flush();
  await bob.machine.setDeviceTrust(BOB, "B2", "verified");
  const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
  const senderKey = encodeBase64(randomBytes(32));
  await bob.machine.importRoomKeys([
    {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: ROOM,
      sender_key: senderKey,
      session_id: session.sessionId,
      session_key: session.exportAt(0),
      sender_claimed_keys: { ed25519: senderKey },
      forwarding_curve25519_key_chain: [],
    },
  ]);
  const keyRequest = (requestId: string) => ({
    type: "m.room_key_request",
    sender: BOB,
    content: {
      action: "request",
      request_id: requestId,
      requesting_device_id: "B2",
      body: { algorithm: "m.megolm.v1.aes-sha2", room_id: ROOM, session_id: session.sessionId },
    },
  });
  const secretRequest = (requestId: string) => ({
    type: "m.secret.request",
    sender: BOB,
    content: { action: "request", name: BACKUP_SECRET, request_id: requestId, requesting_device_id: "B2" },
  });
  return { hs, bob, b2, keyRequest, secretRequest };
}

describe("the to-device queue under a flood of requests while /sendToDevice is refused", () => {
  it(`answers stay within MAX_QUEUED_REPLIES (${MAX_QUEUED_REPLIES}); a room key share is still queued and sent`, async () => {
    const { hs, bob, keyRequest, secretRequest } = await setup();
    const perSync = 300;
    for (let sync = 0; sync < 6; sync++) {
      const toDevice = [];
      for (let i = 0; i < perSync; i++) {
        const id = `${sync}-${i}`;
        toDevice.push(i % 2 === 0 ? keyRequest(`k${id}`) : secretRequest(`s${id}`));
      }
      await bob.machine.receiveSyncChanges({ toDevice, nextBatch: `s${sync}` });
      await flushRefusingToDevice(bob);
      const q = await queued(bob);
      assert.ok(q.length <= MAX_QUEUED_REPLIES, `${q.length} queued after sync ${sync}`);
    }
    assert.equal((await queued(bob)).length, MAX_QUEUED_REPLIES);
    await bob.restart();
    assert.equal((await queued(bob)).length, MAX_QUEUED_REPLIES, "the bound holds on what was read back");

    // A room key share with Carol is queued even so, and goes out once the server takes messages.
    await TestClient.create(hs, { userId: "@carol:x", deviceId: "C" });
    await bob.machine.updateTrackedUsers(["@carol:x"]);
    await flushRefusingToDevice(bob);
    const claim = await bob.machine.getMissingSessions(["@carol:x"]);
    if (claim !== undefined) await bob.send(claim);
    const shares = await bob.machine.shareRoomKey("!other:x", joined(BOB, "@carol:x"));
    assert.ok(shares.length > 0);
    const q = await queued(bob);
    assert.equal(q.filter((r) => r.roomId === "!other:x").length, shares.length);
    assert.equal(q.filter((r) => r.reply !== undefined).length, MAX_QUEUED_REPLIES);
    await bob.flush();
    assert.deepEqual(await queued(bob), []);
    assert.ok(hs.sentToDevice.some((m) => m.from === BOB && m.to === "@carol:x|C"));
    // With the queue drained, a new request is answered again.
    const before = hs.sentToDevice.length;
    await bob.machine.receiveSyncChanges({ toDevice: [keyRequest("after")] });
    await bob.flush();
    assert.equal(hs.sentToDevice.slice(before).filter((m) => m.to === `${BOB}|B2`).length, 1);
  });

  it("a request repeated while its answer waits is answered once", async () => {
    const { hs, bob, keyRequest, secretRequest } = await setup();
    for (let sync = 0; sync < 3; sync++) {
      const toDevice = [];
      for (let i = 0; i < 10; i++) toDevice.push(keyRequest("same-key"), secretRequest("same-secret"));
      await bob.machine.receiveSyncChanges({ toDevice, nextBatch: `s${sync}` });
      await flushRefusingToDevice(bob);
    }
    assert.equal((await queued(bob)).length, 2);
    const before = hs.sentToDevice.length;
    await bob.flush();
    const sent = hs.sentToDevice.slice(before).filter((m) => m.to === `${BOB}|B2`);
    assert.equal(sent.length, 2, "one forwarded key, one secret");
  });

  it("the bound and one answer per request hold after a restart (the counts are rebuilt from the stored queue)", async () => {
    const { bob, keyRequest, secretRequest } = await setup();
    await bob.machine.receiveSyncChanges({
      toDevice: [keyRequest("same-key"), secretRequest("same-secret")],
    });
    await flushRefusingToDevice(bob);
    assert.equal((await queued(bob)).length, 2);
    await bob.restart();
    await bob.machine.receiveSyncChanges({
      toDevice: [keyRequest("same-key"), secretRequest("same-secret")],
    });
    await flushRefusingToDevice(bob);
    assert.equal((await queued(bob)).length, 2, "a request repeated after a restart is not answered again");

    const flood = [];
    for (let i = 0; i < MAX_QUEUED_REPLIES; i++)
      flood.push(i % 2 === 0 ? keyRequest(`k${i}`) : secretRequest(`s${i}`));
    await bob.machine.receiveSyncChanges({ toDevice: flood });
    await flushRefusingToDevice(bob);
    assert.equal((await queued(bob)).length, MAX_QUEUED_REPLIES);
    await bob.restart();
    const more = [];
    for (let i = 0; i < 50; i++) more.push(i % 2 === 0 ? keyRequest(`more${i}`) : secretRequest(`more${i}`));
    await bob.machine.receiveSyncChanges({ toDevice: more });
    await flushRefusingToDevice(bob);
    assert.equal((await queued(bob)).length, MAX_QUEUED_REPLIES, "the bound holds after a restart");
  });

  it(`our own key requests for made-up sessions stay within MAX_OUTGOING_KEY_REQUESTS (${MAX_OUTGOING_KEY_REQUESTS})`, async () => {
    const { bob } = await setup();
    const perGroup = Math.min(MAX_KEY_REQUESTS_PER_SENDER, MAX_KEY_REQUESTS_PER_ROOM);
    const count = MAX_OUTGOING_KEY_REQUESTS + 200;
    for (let i = 0; i < count; i++) {
      const group = Math.floor(i / perGroup);
      const event = {
        event_id: `$e${i}`,
        sender: `@s${group}:x`,
        type: "m.room.encrypted",
        content: {
          algorithm: "m.megolm.v1.aes-sha2",
          ciphertext: "AwgAEhA",
          session_id: encodeBase64(randomBytes(32)),
          device_id: "S",
        },
      };
      await assert.rejects(bob.machine.decryptRoomEvent(event, `!r${group % 7}:x`), {
        code: "UNKNOWN_SESSION",
      });
    }
    const q = await queued(bob);
    assert.equal(q.filter((r) => r.keyRequest !== undefined).length, MAX_OUTGOING_KEY_REQUESTS);
    assert.equal(q.length, MAX_OUTGOING_KEY_REQUESTS);
    assert.equal((await bob.store.getOutgoingKeyRequests()).length, MAX_OUTGOING_KEY_REQUESTS);
  });

  /** Bob fails to decrypt an event of a session he lacks (so asks for it); the import that brings it. */
  async function missingKey(bob: TestClient) {
    const outbound = OutboundGroupSession.create();
    const event = {
      event_id: "$late",
      sender: "@s:x",
      type: "m.room.encrypted",
      content: {
        algorithm: "m.megolm.v1.aes-sha2",
        ciphertext: outbound.encrypt(
          JSON.stringify({ type: "m.room.message", content: {}, room_id: "!r:x" }),
        ),
        session_id: outbound.sessionId,
        device_id: "S",
      },
    };
    await assert.rejects(bob.machine.decryptRoomEvent(event, "!r:x"), { code: "UNKNOWN_SESSION" });
    const senderKey = encodeBase64(randomBytes(32));
    const session = InboundGroupSession.fromSessionKey(outbound.sessionKey());
    return () =>
      bob.machine.importRoomKeys([
        {
          algorithm: "m.megolm.v1.aes-sha2",
          room_id: "!r:x",
          sender_key: senderKey,
          session_id: session.sessionId,
          session_key: session.exportAtFirstKnownIndex(),
          sender_claimed_keys: { ed25519: senderKey },
          forwarding_curve25519_key_chain: [],
        },
      ]);
  }

  const cancellationsSent = (hs: FakeHomeserver) =>
    hs.sentToDevice.filter(
      (m) => m.eventType === "m.room_key_request" && m.content.action === "request_cancellation",
    );

  it("a key that arrives before our request for it was handed out takes the request out, with no cancellation", async () => {
    const { hs, bob } = await setup();
    const importKey = await missingKey(bob);
    assert.equal(
      (await queued(bob)).filter((r) => r.keyRequest !== undefined).length,
      1,
      "the request is queued, not handed out yet",
    );
    await importKey();
    assert.deepEqual(await queued(bob), []);
    await bob.flush();
    assert.deepEqual(cancellationsSent(hs), []);
    assert.equal(hs.sentToDevice.filter((m) => m.eventType === "m.room_key_request").length, 0);
  });

  it("a key that arrives while our request is handed out but not marked sent cancels the request", async () => {
    const { hs, bob } = await setup();
    const importKey = await missingKey(bob);
    // Handed out (in flight: our other devices may get it), then the key comes by import before
    // it is marked sent.
    const [request] = (await bob.machine.outgoingRequests()).filter((r) => r.type === "to_device");
    assert.ok(request !== undefined);
    await importKey();
    const q = await queued(bob);
    assert.deepEqual(
      q.map((r) => r.keyRequest),
      [undefined],
      "the request is out of the queue, a cancellation in it",
    );
    await bob.send(request); // marking it sent now is a no-op, not an error
    await bob.flush();
    const cancellations = cancellationsSent(hs);
    assert.equal(cancellations.length, 1);
    const requestId = (request.body.messages[BOB]?.["*"] as { request_id?: unknown } | undefined)?.request_id;
    assert.equal(cancellations[0]?.content.request_id, requestId);
  });

  it("a key that arrives after a restart, our request still queued from before it, cancels the request", async () => {
    // The run before the restart may have handed the request out: it is cancelled to be safe.
    const { hs, bob } = await setup();
    const importKey = await missingKey(bob);
    await bob.restart();
    await importKey();
    await bob.flush();
    assert.equal(cancellationsSent(hs).length, 1);
  });
});
