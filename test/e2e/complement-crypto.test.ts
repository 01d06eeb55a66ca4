// complement-crypto's client-SDK scenarios (matrix-org/complement-crypto, see docs/security.md for
// the table), with Keyroom as one client and a client we did not write as the other: matrix-js-sdk
// (Rust crypto, vodozemac) and matrix-nio (libolm), through the devserver. Each test names the
// complement-crypto test it mirrors. Mostly about decryption across devices, restarts and key
// rotation; the Keyroom-only parts (no peer) live in e2ee-client.test.ts.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { loginPeer, passwordFor } from "../support/peers/index.ts";
import {
  keyroomRoom,
  keyroomUser,
  krToPeer,
  newPeer,
  peerToKr,
  restart,
  scenario,
  seen,
  syncUntil,
  useFixture,
} from "./complement-helpers.ts";
import { devServerFixture, uniq } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-complement-");
useFixture(fx);

describe("complement-crypto scenarios, Keyroom with a client we did not write (devserver)", () => {
  scenario("TestCanDecryptMessagesAfterInviteButBeforeJoin", async (kind, open) => {
    const kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const roomId = await kr.client.createRoom({ name: "invite first", invite: [peer.userId] });
    await peer.waitForMembership(roomId, peer.userId, "invite");
    // Sent while the peer is only invited: Keyroom shares the key with invited members.
    const id = await kr.client.sendText(roomId, "while you were invited");
    await peer.join(roomId);
    const m = await peer.waitForMessage(roomId, (x) => x.eventId === id && x.decrypted);
    assert.equal(m.body, "while you were invited");
  });

  scenario("TestBobCanSeeButNotDecryptHistoryInPublicRoom", async (kind, open) => {
    // Keyroom's history from before the peer joined: visible, not decryptable; later messages are.
    const kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const roomId = await kr.client.createRoom({ name: "history", encrypted: true, visibility: "public" });
    await kr.client.sendStateEvent(roomId, "m.room.history_visibility", "", { history_visibility: "shared" });
    const before = await kr.client.sendText(roomId, "before you joined");
    await peer.join(roomId);
    await syncUntil(
      kr,
      () => kr.client.getRoom(roomId)?.getMember(peer.userId)?.membership === "join",
      "join",
    );
    await krToPeer(kr, peer, roomId, "after you joined");
    const old = peer.messages(roomId).find((x) => x.eventId === before);
    assert.ok(old, "the peer sees the earlier event");
    assert.equal(old.encrypted, true);
    assert.equal(old.decrypted, false, "but cannot decrypt it");

    // And the other way: the peer's history before a second Keyroom user joined.
    const late = await keyroomUser("late");
    const peerBefore = await peer.sendText(roomId, "before keyroom joined");
    await late.client.joinRoom(roomId);
    await syncUntil(late, () => seen(late, peerBefore).present, "earlier event seen");
    assert.equal(seen(late, peerBefore).failed, true, "Keyroom cannot decrypt it");
    await syncUntil(
      kr,
      () => kr.client.getRoom(roomId)?.getMember(late.client.userId)?.membership === "join",
      "late joined",
    );
    await peer.waitForMembership(roomId, late.client.userId, "join");
    await peerToKr(peer, late, roomId, "after keyroom joined");
    assert.equal(seen(late, peerBefore).body, undefined);
  });

  scenario("TestOnRejoinBobCanSeeButNotDecryptHistoryInPublicRoom", async (kind, open) => {
    const kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const roomId = await kr.client.createRoom({ name: "rejoin", encrypted: true, visibility: "public" });
    await kr.client.sendStateEvent(roomId, "m.room.history_visibility", "", { history_visibility: "shared" });
    await peer.join(roomId);
    await syncUntil(
      kr,
      () => kr.client.getRoom(roomId)?.getMember(peer.userId)?.membership === "join",
      "join",
    );
    const first = await krToPeer(kr, peer, roomId, "while you are here");
    await peer.leave(roomId);
    await syncUntil(
      kr,
      () => kr.client.getRoom(roomId)?.getMember(peer.userId)?.membership === "leave",
      "leave",
    );
    const away = await kr.client.sendText(roomId, "while you are away");
    await peer.join(roomId);
    await syncUntil(
      kr,
      () => kr.client.getRoom(roomId)?.getMember(peer.userId)?.membership === "join",
      "rejoin",
    );
    const back = await krToPeer(kr, peer, roomId, "welcome back");
    assert.notEqual(back, first, "the key rotated when the peer left");
    const missed = peer.messages(roomId).find((x) => x.eventId === away);
    assert.ok(missed, "the peer sees the event sent while it was away");
    assert.equal(missed.decrypted, false, "but cannot decrypt it");
  });

  scenario("TestOnNewDeviceBobCanSeeButNotDecryptHistoryInPublicRoom", async (kind, open) => {
    const kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    const oldId = await kr.client.sendText(roomId, "to the first device");
    await peer.waitForMessage(roomId, (x) => x.eventId === oldId && x.decrypted);
    const name = peer.userId.slice(1).split(":")[0] ?? "";
    const second = await loginPeer(kind, fx.hs.baseUrl, name, passwordFor(name));
    open.push(second);
    await kr.client.syncOnce({ timeoutMs: 0 });
    const newId = await kr.client.sendText(roomId, "to both devices");
    const m = await second.waitForMessage(roomId, (x) => x.eventId === newId && x.decrypted);
    assert.equal(m.body, "to both devices");
    const old = second.messages(roomId).find((x) => x.eventId === oldId);
    assert.ok(old, "the new device sees the earlier event");
    assert.equal(old.decrypted, false, "but cannot decrypt it");
  });

  scenario("TestRoomKeyIsCycledOnMemberLeaving", async (kind, open) => {
    const kr = await keyroomUser();
    const stays = await newPeer(kind, open);
    const leaves = await keyroomUser("leaver");
    const roomId = await keyroomRoom(kr, stays);
    await kr.client.invite(roomId, leaves.client.userId);
    await leaves.client.syncOnce({ timeoutMs: 0 });
    await leaves.client.joinRoom(roomId);
    await syncUntil(
      kr,
      () => kr.client.getRoom(roomId)?.getMember(leaves.client.userId)?.membership === "join",
      "joined",
    );
    const before = await krToPeer(kr, stays, roomId, "to both");
    await leaves.client.leaveRoom(roomId);
    await syncUntil(
      kr,
      () => kr.client.getRoom(roomId)?.getMember(leaves.client.userId)?.membership === "leave",
      "left",
    );
    const after = await krToPeer(kr, stays, roomId, "one left");
    assert.notEqual(after, before, "a new Megolm session once a member left");
  });

  scenario("TestRoomKeyIsCycledOnDeviceLogout", async (kind, open) => {
    const kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    const name = peer.userId.slice(1).split(":")[0] ?? "";
    const second = await loginPeer(kind, fx.hs.baseUrl, name, passwordFor(name));
    await kr.client.syncOnce({ timeoutMs: 0 });
    const before = await krToPeer(kr, peer, roomId, "to both devices");
    await second.logout();
    await kr.client.syncOnce({ timeoutMs: 0 });
    const after = await krToPeer(kr, peer, roomId, "one device left");
    assert.notEqual(after, before, "a new Megolm session once a device logged out");
  });

  scenario("TestRoomKeyIsCycledAfterEnoughMessages", async (kind, open) => {
    const kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer, { rotationPeriodMessages: 3 });
    const sessions: string[] = [];
    for (let i = 0; i < 4; i++) sessions.push(await krToPeer(kr, peer, roomId, `message ${i}`));
    assert.equal(new Set(sessions.slice(0, 3)).size, 1, "three messages on one session");
    assert.notEqual(sessions[3], sessions[0], "the fourth on a new one");
  });

  scenario("TestRoomKeyIsNotCycled", async (kind, open) => {
    // Nothing that calls for a new key: the peer talks, Keyroom talks again, a member changes name.
    const kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    const first = await krToPeer(kr, peer, roomId, "one");
    await peerToKr(peer, kr, roomId, "reply");
    // The rename reaches the room as a new m.room.member event, which Keyroom syncs before sending.
    await kr.client.setDisplayName("renamed");
    await syncUntil(
      kr,
      () => kr.client.getRoom(roomId)?.getMember(kr.client.userId)?.displayName === "renamed",
      "Keyroom's rename in the room",
    );
    assert.equal(kr.client.getRoom(roomId)?.getMember(kr.client.userId)?.membership, "join");
    const second = await krToPeer(kr, peer, roomId, "two");
    assert.equal(second, first, "the same Megolm session");
  });

  scenario("TestRoomKeyIsNotCycledOnClientRestart", async (kind, open) => {
    let kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    const first = await krToPeer(kr, peer, roomId, "before the restart");
    const fromPeer = await peerToKr(peer, kr, roomId, "from the peer, before the restart");
    kr = await restart(kr);
    await kr.client.syncOnce({ timeoutMs: 0 });
    const second = await krToPeer(kr, peer, roomId, "after the restart");
    assert.equal(second, first, "the outbound session survived the restart");
    // And the restarted device still reads what it had received before.
    const page = await kr.client.messages(roomId, { limit: 50 });
    assert.equal(
      page.events.find((e) => e.eventId === fromPeer)?.content.body,
      "from the peer, before the restart",
    );
  });

  scenario("TestUnprocessedToDeviceMessagesArentLostOnRestart", async (kind, open) => {
    // The room key arrives (as a to-device message) while Keyroom is not running.
    let kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    await peer.waitForDevices(kr.client.userId, (ids) => ids.includes(kr.client.deviceId));
    await kr.client.close();
    const id = await peer.sendText(roomId, "sent while you were down");
    kr = await restart(kr);
    await syncUntil(kr, () => seen(kr, id).body !== undefined, "decrypted after the restart");
    assert.equal(seen(kr, id).body, "sent while you were down");
  });

  scenario("TestFallbackKeyIsUsedIfOneTimeKeysRunOut", async (kind, open) => {
    // Someone claims every one-time key of the Keyroom device; the peer (no Olm session yet) must
    // then get the fallback key, and Keyroom must decrypt the room key sent with it.
    const kr = await keyroomUser();
    const thief = await fx.hs.register(uniq("thief"), "pw");
    const claim = async () =>
      (
        await fx.hs.api("POST", "/keys/claim", {
          token: thief.accessToken,
          body: { one_time_keys: { [kr.client.userId]: { [kr.client.deviceId]: "signed_curve25519" } } },
        })
      ).json.one_time_keys?.[kr.client.userId]?.[kr.client.deviceId] as
        | Record<string, { fallback?: boolean }>
        | undefined;
    let fallback = false;
    for (let i = 0; i < 1000 && !fallback; i++) {
      const got = Object.values((await claim()) ?? {})[0];
      assert.ok(got, "a key (one-time or fallback) is always there");
      fallback = got.fallback === true;
    }
    assert.ok(fallback, "the one-time keys ran out and the fallback key was handed out");
    const peer = await newPeer(kind, open);
    const roomId = await kr.client.createRoom({ name: "fallback", invite: [peer.userId] });
    await peer.waitForMembership(roomId, peer.userId, "invite");
    await peer.join(roomId);
    await peerToKr(peer, kr, roomId, "over the fallback key");
  });

  scenario("TestDelayedInviteResponse", async (kind, open) => {
    // The invite is answered (200) but has not come down Keyroom's sync when Keyroom sends: the
    // message must still be encrypted for the invitee.
    const kr = await keyroomUser();
    const peer = await newPeer(kind, open);
    const roomId = await kr.client.createRoom({ name: "delayed invite", encrypted: true });
    // Keyroom knows the room from sync, and a first message loaded the member list (as there).
    await syncUntil(kr, () => kr.client.getRoom(roomId) !== undefined, "room synced");
    await kr.client.sendText(roomId, "dummy message to load the members");
    await kr.client.syncOnce({ timeoutMs: 0 });
    await kr.client.invite(roomId, peer.userId);
    // No sync between the invite and the send (Keyroom syncs only when the test says so).
    const id = await kr.client.sendText(roomId, "hello world!");
    await peer.waitForMembership(roomId, peer.userId, "invite");
    await peer.join(roomId);
    const m = await peer.waitForMessage(roomId, (x) => x.eventId === id && x.decrypted);
    assert.equal(m.body, "hello world!");
  });

  scenario("TestToDeviceMessagesAreProcessedInOrder", async (kind, open) => {
    // Four peers send 30 messages each, interleaved, in a room that rotates its key at every
    // message, while Keyroom does not sync: 120 room keys wait for it, more than the server hands
    // out per sync. Keyroom then decrypts every event.
    const kr = await keyroomUser();
    const roomId = await kr.client.createRoom({
      name: "in order",
      visibility: "public",
      initialState: [
        {
          type: "m.room.encryption",
          state_key: "",
          content: { algorithm: "m.megolm.v1.aes-sha2", rotation_period_msgs: 1 },
        },
      ],
    });
    const peers = [];
    for (let i = 0; i < 4; i++) {
      const p = await newPeer(kind, open);
      await p.join(roomId);
      peers.push(p);
    }
    for (const p of peers) for (const q of peers) await p.waitForMembership(roomId, q.userId, "join");
    const sent: { id: string; body: string }[] = [];
    for (let i = 1; i <= 30; i++) {
      for (const p of peers) {
        const body = `Message ${i} from ${p.userId}`;
        sent.push({ id: await p.sendText(roomId, body), body });
      }
    }
    const last = sent.at(-1)?.id ?? "";
    await syncUntil(kr, () => seen(kr, last).present, "the last event", 400);
    // The room keys come over several syncs (the server hands out 100 to-device events per sync):
    // sync until they stop coming. The sync's timeline holds the newest events; the rest come by
    // back-pagination, as there.
    const undecrypted = async () => {
      const page = await kr.client.messages(roomId, { limit: sent.length + 20 });
      return {
        page,
        missing: sent.filter(
          ({ id }) => !page.events.some((e) => e.eventId === id && e.encryption?.decrypted),
        ),
      };
    };
    let { page: history, missing } = await undecrypted();
    for (let i = 0; i < 20 && missing.length > 0; i++) {
      await kr.client.syncOnce({ timeoutMs: 200 });
      ({ page: history, missing } = await undecrypted());
    }
    for (const { id, body } of sent) {
      const event = history.events.find((e) => e.eventId === id);
      assert.equal(event?.content.body, body, `event ${id} decrypted`);
    }
  });
});
