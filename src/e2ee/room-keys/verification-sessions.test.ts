import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomBytes } from "../../crypto/primitives/index.ts";
import type { EncryptedRoomEvent } from "../decryption/room-events.ts";
import { createDehydratedDevice } from "../dehydration/dehydrated-device.ts";
import { E2eeError, UnknownDevicesError } from "../errors.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import type { RoomEventPlan } from "./send.ts";
import { MAX_VERIFICATION_SESSIONS, VERIFICATION_SESSION_MAX_AGE_MS } from "./verification-sessions.ts";

const ROOM = "!dm:x";
const members = joined("@alice:x", "@bob:x", "@carol:x");
const REQUEST = { msgtype: "m.key.verification.request", to: "@bob:x", from_device: "A", body: "verify" };
const READY = (to: string) => ({
  from_device: "A",
  methods: ["m.sas.v1"],
  "m.relates_to": { rel_type: "m.reference", event_id: to },
});

async function clients(now?: () => number) {
  const hs = new FakeHomeserver();
  const opts = now !== undefined ? { now } : {};
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", ...opts });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", ...opts });
  const bob2 = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B2", ...opts });
  const carol = await TestClient.create(hs, { userId: "@carol:x", deviceId: "C", ...opts });
  return { hs, alice, bob, bob2, carol };
}

/** Asks until ready, sending each stage's requests; the ready plan's requests are sent too. */
async function prepared(
  c: TestClient,
  ask: () => Promise<RoomEventPlan>,
): Promise<RoomEventPlan & { stage: "ready" }> {
  let plan = await ask();
  for (let i = 0; plan.stage !== "ready" && i < 5; i++) {
    for (const r of plan.requests) await c.send(r);
    plan = await ask();
  }
  assert.equal(plan.stage, "ready");
  for (const r of plan.requests) await c.send(r);
  return plan as RoomEventPlan & { stage: "ready" };
}

const verificationEvent = (c: TestClient, type: string, content: Record<string, unknown>, to = "@bob:x") =>
  prepared(c, () => c.machine.prepareVerificationEvent(ROOM, type, content, to, { members }));
const roomMessage = (c: TestClient, body: string) =>
  prepared(c, () =>
    c.machine.prepareRoomEvent(ROOM, "m.room.message", { msgtype: "m.text", body }, { members }),
  );

const asEvent = (c: TestClient, content: Record<string, unknown>): EncryptedRoomEvent => ({
  event_id: c.hs.nextEventId(),
  sender: c.userId,
  type: "m.room.encrypted",
  content,
});

describe("in-room verification events: their own session, for the partner's devices", () => {
  it('shareWith "verified": the partner\'s unverified devices read the flow, not the room', async () => {
    const { alice, bob, bob2, carol } = await clients();
    await alice.machine.setRoomSettings(ROOM, { shareWith: "verified" });
    const sent = await roomMessage(alice, "room only");
    const asked = await verificationEvent(alice, "m.room.message", REQUEST);
    assert.notEqual(asked.content.session_id, sent.content.session_id);
    const secret = asEvent(alice, sent.content);
    const request = asEvent(alice, asked.content);
    for (const device of [bob, bob2]) {
      await device.sync();
      const read = await device.machine.decryptRoomEvent(request, ROOM);
      assert.equal(read.content.msgtype, "m.key.verification.request");
      await assert.rejects(device.machine.decryptRoomEvent(secret, ROOM));
    }
    // Not a party to the flow: no key for it.
    await carol.sync();
    await assert.rejects(carol.machine.decryptRoomEvent(request, ROOM));
    // Our own copy reads it.
    assert.equal((await alice.machine.decryptRoomEvent(request, ROOM)).content.to, "@bob:x");
  });

  it("verifyDevices: the room's send is refused for unseen devices, the flow's goes out", async () => {
    const { alice, bob } = await clients();
    await alice.machine.setRoomSettings(ROOM, { verifyDevices: true });
    await assert.rejects(roomMessage(alice, "refused"), UnknownDevicesError);
    const request = asEvent(alice, (await verificationEvent(alice, "m.room.message", REQUEST)).content);
    await bob.sync();
    assert.equal((await bob.machine.decryptRoomEvent(request, ROOM)).content.to, "@bob:x");
  });

  it("a flow's later events reuse its session with no new share; a new request starts a new one", async () => {
    const { alice, bob } = await clients();
    const first = await verificationEvent(alice, "m.room.message", REQUEST);
    assert.ok(first.requests.length > 0);
    const ready = await verificationEvent(alice, "m.key.verification.ready", READY("$req"));
    assert.deepEqual(ready.requests, []);
    assert.equal(ready.content.session_id, first.content.session_id);
    assert.deepEqual(
      ready.content["m.relates_to"],
      READY("$req")["m.relates_to"],
      "the relation stays clear",
    );
    const again = await verificationEvent(alice, "m.room.message", REQUEST);
    assert.notEqual(again.content.session_id, first.content.session_id);
    assert.ok(again.requests.length > 0);
    await bob.sync();
    assert.equal(
      (await bob.machine.decryptRoomEvent(asEvent(alice, ready.content), ROOM)).content.from_device,
      "A",
    );
  });

  it("a blocked device of the partner gets nothing, and blocking one replaces the session", async () => {
    const { alice, bob, bob2 } = await clients();
    const before = await verificationEvent(alice, "m.room.message", REQUEST);
    await alice.machine.setDeviceTrust("@bob:x", "B2", "blacklisted");
    const after = await verificationEvent(alice, "m.key.verification.ready", READY("$req"));
    assert.notEqual(after.content.session_id, before.content.session_id);
    await bob.sync();
    await bob2.sync();
    assert.equal(
      (await bob.machine.decryptRoomEvent(asEvent(alice, after.content), ROOM)).content.from_device,
      "A",
    );
    await assert.rejects(bob2.machine.decryptRoomEvent(asEvent(alice, after.content), ROOM));
  });

  it("a dehydrated device of the partner gets nothing (MSC3814; it takes no part in a flow)", async () => {
    const { hs, alice } = await clients();
    const body = createDehydratedDevice({ userId: "@bob:x", key: randomBytes(32), displayName: "d" }).body;
    const d = hs.device("@bob:x", body.device_id);
    for (const [id, k] of Object.entries(body.one_time_keys)) d.oneTimeKeys.set(id, k);
    hs.forgeDeviceKeys(
      "@bob:x",
      body.device_id,
      body.device_keys as Parameters<typeof hs.forgeDeviceKeys>[2],
    );
    await verificationEvent(alice, "m.room.message", REQUEST);
    const keysTo = hs.sentToDevice.filter((m) => m.eventType === "m.room.encrypted").map((m) => m.to);
    assert.deepEqual(keysTo.sort(), ["@bob:x|B", "@bob:x|B2"]);
  });

  it("an old session is replaced after its time", async () => {
    let now = 1_000_000;
    const { alice } = await clients(() => now);
    const first = await verificationEvent(alice, "m.room.message", REQUEST);
    now += VERIFICATION_SESSION_MAX_AGE_MS;
    const later = await verificationEvent(alice, "m.key.verification.ready", READY("$req"));
    assert.notEqual(later.content.session_id, first.content.session_id);
  });

  it(`holds at most ${MAX_VERIFICATION_SESSIONS} sessions: the oldest goes`, async () => {
    const { alice } = await clients();
    const ask = (room: string, type: string, content: Record<string, unknown>) =>
      prepared(alice, () =>
        alice.machine.prepareVerificationEvent(room, type, content, "@bob:x", { members }),
      );
    const first = await ask("!r0:x", "m.room.message", REQUEST);
    assert.equal(
      (await ask("!r0:x", "m.key.verification.ready", READY("$r"))).content.session_id,
      first.content.session_id,
    );
    for (let i = 1; i <= MAX_VERIFICATION_SESSIONS; i++) await ask(`!r${i}:x`, "m.room.message", REQUEST);
    const evicted = await ask("!r0:x", "m.key.verification.ready", READY("$r"));
    assert.notEqual(evicted.content.session_id, first.content.session_id);
  });

  it("refuses other events, and a partner who is not another member", async () => {
    const { alice } = await clients();
    const refused = (type: string, content: Record<string, unknown>, to: string) =>
      assert.rejects(
        alice.machine.prepareVerificationEvent(ROOM, type, content, to, { members }),
        (e: unknown) => e instanceof E2eeError && e.code === "BAD_ARGUMENT",
      );
    await refused("m.room.message", { msgtype: "m.text", body: "not a verification" }, "@bob:x");
    await refused("m.reaction", {}, "@bob:x");
    await refused("m.key.verification.ready", READY("$r"), "@mallory:x");
    await refused("m.key.verification.ready", READY("$r"), "@alice:x");
  });
});
