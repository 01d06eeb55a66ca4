import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RUST_SHARED_HISTORY_FIELD } from "../../crypto/key-export/exported-room-key.ts";
import type { CryptoChanges } from "../../store/changes.ts";
import type { EncryptedRoomEvent } from "../decryption/room-events.ts";
import { DecryptionError, UnknownDevicesError } from "../errors.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { RATCHET_RESERVATION } from "./outbound.ts";
import { MAX_ROTATION_PERIOD_MS, MIN_ROTATION_PERIOD_MS } from "./settings.ts";

const ROOM = "!room:x";
const sessionOf = (e: EncryptedRoomEvent): string => (e.content as { session_id: string }).session_id;

async function trio(now?: () => number) {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now });
  const carol = await TestClient.create(hs, { userId: "@carol:x", deviceId: "C", now });
  await bob.sync();
  await carol.sync();
  return { hs, alice, bob, carol };
}

describe("room key sharing and rotation", () => {
  it("rotates when a member leaves: the leaver cannot read what follows", async () => {
    const { alice, bob, carol } = await trio();
    const first = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x", "@carol:x"), "all three");
    const second = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "carol left");
    assert.notEqual(sessionOf(second), sessionOf(first));
    await bob.sync();
    await carol.sync();
    assert.equal((await carol.machine.decryptRoomEvent(first, ROOM)).content.body, "all three");
    await assert.rejects(
      carol.machine.decryptRoomEvent(second, ROOM),
      (e) => e instanceof DecryptionError && e.code === "UNKNOWN_SESSION",
    );
    assert.equal((await bob.machine.decryptRoomEvent(second, ROOM)).content.body, "carol left");
  });

  it("saves the ratchet ahead once per RATCHET_RESERVATION messages, and never reuses an index across a restart", async () => {
    const { alice, bob, carol } = await trio();
    const members = joined("@alice:x", "@bob:x", "@carol:x");
    const first = await alice.sendMessage(ROOM, members, "one");
    const storedIndex = () =>
      (alice.data.outbound.get(ROOM)?.pickle as { messageIndex?: number } | undefined)?.messageIndex;
    // The first message saved the ratchet as it will be RATCHET_RESERVATION messages later.
    assert.equal(storedIndex(), RATCHET_RESERVATION);
    assert.equal(alice.data.outbound.get(ROOM)?.messageCount, RATCHET_RESERVATION);
    const saved: CryptoChanges[] = [];
    const save = alice.store.saveChanges.bind(alice.store);
    alice.store.saveChanges = async (c) => {
      saved.push(c);
      return save(c);
    };
    const encrypt = async (body: string): Promise<EncryptedRoomEvent> => ({
      event_id: `$${body}`,
      sender: "@alice:x",
      type: "m.room.encrypted",
      content: await alice.machine.encryptRoomEvent(ROOM, "m.room.message", { msgtype: "m.text", body }),
    });
    const second = await encrypt("two");
    // Covered by the reservation: no write at all.
    assert.equal(saved.length, 0);
    for (let i = 2; i < RATCHET_RESERVATION; i++) await encrypt(`filler ${i}`);
    assert.equal(saved.length, 0);
    // Index RATCHET_RESERVATION: one transaction, before the event is returned, carrying no device list.
    await encrypt("next reservation");
    assert.equal(saved.length, 1);
    assert.deepEqual(saved[0]?.outboundGroupSessions, []);
    assert.deepEqual(
      saved[0]?.outboundGroupSessionUpdates?.map((u) => Object.keys(u).sort()),
      [["messageCount", "pickle", "roomId", "sessionId"]],
    );
    assert.equal(storedIndex(), 2 * RATCHET_RESERVATION);
    const stored = alice.data.outbound.get(ROOM);
    assert.deepEqual(Object.keys(stored?.sharedWith ?? {}).sort(), ["@bob:x", "@carol:x"]);
    assert.deepEqual(stored?.pendingShares, {});
    // After a restart (as after a crash at any point) the ratchet continues from the stored index,
    // past every index used: reusing one would make Bob refuse the third event as a replay.
    await alice.restart();
    const third = await alice.sendMessage(ROOM, members, "three");
    assert.equal(sessionOf(third), sessionOf(first));
    await bob.sync();
    for (const [event, body] of [
      [first, "one"],
      [second, "two"],
      [third, "three"],
    ] as const) {
      assert.equal((await bob.machine.decryptRoomEvent(event, ROOM)).content.body, body);
    }
    await carol.sync();
  });

  it("does not rotate for a new member, who gets the key from the current index only", async () => {
    const { alice, bob, carol } = await trio();
    const before = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "before carol");
    const after = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x", "@carol:x"), "with carol");
    assert.equal(sessionOf(after), sessionOf(before));
    await carol.sync();
    assert.equal((await carol.machine.decryptRoomEvent(after, ROOM)).content.body, "with carol");
    await assert.rejects(
      carol.machine.decryptRoomEvent(before, ROOM),
      (e) => e instanceof DecryptionError && e.code === "UNKNOWN_INDEX",
    );
    await bob.sync();
  });

  it("rotates after rotation_period_msgs messages and after rotation_period_ms", async () => {
    let t = 1_700_000_000_000;
    const { alice } = await trio(() => t);
    const members = joined("@alice:x", "@bob:x");
    const settings = { rotationPeriodMessages: 2, rotationPeriodMs: MIN_ROTATION_PERIOD_MS };
    const a = await alice.sendMessage(ROOM, members, "1", settings);
    const b = await alice.sendMessage(ROOM, members, "2", settings);
    const c = await alice.sendMessage(ROOM, members, "3", settings);
    assert.equal(sessionOf(a), sessionOf(b));
    assert.notEqual(sessionOf(c), sessionOf(b));
    t += MIN_ROTATION_PERIOD_MS;
    const d = await alice.sendMessage(ROOM, members, "4", settings);
    assert.notEqual(sessionOf(d), sessionOf(c));
  });

  it("shares with invited members unless history is visible only to joined ones", async () => {
    const { alice, carol } = await trio();
    const members = [...joined("@alice:x", "@bob:x"), { userId: "@carol:x", membership: "invite" as const }];
    const shared = await alice.sendMessage(ROOM, members, "invited see this");
    await carol.sync();
    assert.equal((await carol.machine.decryptRoomEvent(shared, ROOM)).content.body, "invited see this");
    const hidden = await alice.sendMessage("!joined-only:x", members, "not for invitees", {
      historyVisibility: "joined",
    });
    await carol.sync();
    await assert.rejects(carol.machine.decryptRoomEvent(hidden, "!joined-only:x"), {
      code: "UNKNOWN_SESSION",
    });
  });

  it("marks keys shareable (shared_history) by the visibility, and rotates when it crosses shared / not shared", async () => {
    const { alice, bob } = await trio();
    const members = joined("@alice:x", "@bob:x");
    const flag = async (e: EncryptedRoomEvent) =>
      (await bob.store.getInboundGroupSession(ROOM, sessionOf(e)))?.sharedHistory === true;
    const shared = await alice.sendMessage(ROOM, members, "shared", { historyVisibility: "shared" });
    const again = await alice.sendMessage(ROOM, members, "world", { historyVisibility: "world_readable" });
    assert.equal(sessionOf(again), sessionOf(shared)); // both shareable: no rotation
    const joinedOnly = await alice.sendMessage(ROOM, members, "joined", { historyVisibility: "joined" });
    assert.notEqual(sessionOf(joinedOnly), sessionOf(shared));
    const back = await alice.sendMessage(ROOM, members, "shared again", { historyVisibility: "shared" });
    assert.notEqual(sessionOf(back), sessionOf(joinedOnly));
    const { toDevice } = await bob.sync();
    assert.deepEqual([await flag(shared), await flag(joinedOnly), await flag(back)], [true, false, true]);
    // Each m.room_key says it under the spec's name and the one every matrix-rust-sdk (Element)
    // reads; not also its `m.shared_history` (an alias of that one there: both fail its parse).
    const names = (content: object) =>
      Object.fromEntries(Object.entries(content).filter(([name]) => name.includes("shared_history")));
    const sent = toDevice.filter((e) => e.type === "m.room_key").map((e) => names(e.content));
    const both = (v: boolean) => ({ shared_history: v, [RUST_SHARED_HISTORY_FIELD]: v });
    assert.deepEqual(sent, [both(true), both(false), both(true)]);
    // Our own copy and the outbound record carry it too; a key export writes it under both names.
    assert.equal(alice.data.outbound.get(ROOM)?.sharedHistory, true);
    const exported = await alice.machine.exportRoomKeys([ROOM]);
    const bySession = new Map(exported.map((k) => [k.session_id, names(k)]));
    assert.deepEqual(
      [bySession.get(sessionOf(shared)), bySession.get(sessionOf(joinedOnly))],
      [both(true), {}],
    );
  });

  it("under verifyDevices, throws UnknownDevicesError until each device is decided", async () => {
    const { alice, bob, carol } = await trio();
    const members = joined("@alice:x", "@bob:x", "@carol:x");
    await assert.rejects(
      alice.sendMessage(ROOM, members, "x", { verifyDevices: true }),
      (e) =>
        e instanceof UnknownDevicesError &&
        e.devices
          .map((d) => `${d.userId}|${d.deviceId}`)
          .sort()
          .join(",") === "@bob:x|B,@carol:x|C",
    );
    await alice.machine.setDeviceTrust("@bob:x", "B", "verified");
    await alice.machine.setDeviceTrust("@carol:x", "C", "blacklisted");
    const event = await alice.sendMessage(ROOM, members, "decided", { verifyDevices: true });
    await bob.sync();
    await carol.sync();
    assert.equal((await bob.machine.decryptRoomEvent(event, ROOM)).content.body, "decided");
    await assert.rejects(carol.machine.decryptRoomEvent(event, ROOM), { code: "WITHHELD" });
  });

  it("rotates when a device that holds the key is blacklisted", async () => {
    const { alice, bob } = await trio();
    const members = joined("@alice:x", "@bob:x");
    const first = await alice.sendMessage(ROOM, members, "1");
    await alice.machine.setDeviceTrust("@bob:x", "B", "blacklisted");
    const second = await alice.sendMessage(ROOM, members, "2");
    assert.notEqual(sessionOf(second), sessionOf(first));
    await bob.sync();
    await assert.rejects(bob.machine.decryptRoomEvent(second, ROOM), { code: "WITHHELD" });
  });

  it("refuses to encrypt before the key is shared", async () => {
    const { alice } = await trio();
    await assert.rejects(alice.machine.encryptRoomEvent(ROOM, "m.room.message", {}), {
      code: "ROOM_KEY_NOT_SHARED",
    });
    await alice.machine.updateTrackedUsers(["@bob:x"]);
    await alice.flush();
    const claim = await alice.machine.getMissingSessions(["@bob:x"]);
    assert.ok(claim);
    await alice.send(claim);
    const requests = await alice.machine.shareRoomKey(ROOM, joined("@alice:x", "@bob:x"));
    assert.equal(requests.length, 1);
    await assert.rejects(alice.machine.encryptRoomEvent(ROOM, "m.room.message", {}), {
      code: "ROOM_KEY_NOT_SHARED",
    });
    // Still offered by outgoingRequests until sent (e.g. after a lost response).
    assert.ok((await alice.machine.outgoingRequests()).some((r) => r.id === requests[0]?.id));
    await alice.flush();
    await alice.machine.encryptRoomEvent(ROOM, "m.room.message", { body: "now" });
  });

  it("records room settings: per-room verifyDevices persists, the algorithm cannot change", async () => {
    const { alice } = await trio();
    const members = joined("@alice:x", "@bob:x");
    await alice.machine.setRoomSettings(ROOM, { algorithm: "m.megolm.v1.aes-sha2", verifyDevices: true });
    await alice.restart();
    assert.equal((await alice.machine.getRoomSettings(ROOM))?.verifyDevices, true);
    await assert.rejects(alice.sendMessage(ROOM, members, "x"), (e) => e instanceof UnknownDevicesError);
    await assert.rejects(alice.machine.setRoomSettings(ROOM, { algorithm: "m.none" }), {
      code: "ENCRYPTION_DOWNGRADE",
    });
    await assert.rejects(alice.sendMessage("!new:x", members, "x", { algorithm: "m.other" }), {
      code: "UNSUPPORTED_ALGORITHM",
    });
    // A first share records the room, so a later one cannot switch algorithms either.
    await alice.sendMessage("!other:x", members, "y");
    await assert.rejects(alice.sendMessage("!other:x", members, "z", { algorithm: "m.other" }), {
      code: "ENCRYPTION_DOWNGRADE",
    });
  });

  it("with onlyVerifiedDevices, withholds the key from devices not verified (m.unverified)", async () => {
    const { alice, bob, carol } = await trio();
    await alice.machine.updateTrackedUsers(["@bob:x", "@carol:x"]);
    await alice.flush();
    await alice.machine.setDeviceTrust("@bob:x", "B", "verified");
    const members = joined("@alice:x", "@bob:x", "@carol:x");
    const event = await alice.sendMessage(ROOM, members, "verified only", { onlyVerifiedDevices: true });
    await bob.sync();
    await carol.sync();
    assert.equal((await bob.machine.decryptRoomEvent(event, ROOM)).content.body, "verified only");
    await assert.rejects(
      carol.machine.decryptRoomEvent(event, ROOM),
      (e) => e instanceof DecryptionError && e.code === "WITHHELD" && e.withheldCode === "m.unverified",
    );
  });
});

describe("rotation a room's state cannot stretch", () => {
  it("rotates after a week even when the room asks for never", async () => {
    let t = 1_700_000_000_000;
    const { alice } = await trio(() => t);
    const members = joined("@alice:x", "@bob:x");
    const hostile = {
      rotationPeriodMessages: Number.MAX_SAFE_INTEGER,
      rotationPeriodMs: Number.MAX_SAFE_INTEGER,
    };
    const a = await alice.sendMessage(ROOM, members, "1", hostile);
    t += MAX_ROTATION_PERIOD_MS - 1;
    assert.equal(sessionOf(await alice.sendMessage(ROOM, members, "2", hostile)), sessionOf(a));
    t += 1;
    assert.notEqual(sessionOf(await alice.sendMessage(ROOM, members, "3", hostile)), sessionOf(a));
  });
});
