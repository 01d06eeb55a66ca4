// complement-crypto's federation scenarios (tests/federation_connectivity_test.go):
// TestNewUserCannotGetKeysForOfflineServer and TestExistingSessionCannotGetKeysForOfflineServer.
// complement-crypto pauses a second homeserver (hs2, Bob's); here there is one devserver, so Bob's
// server going offline is what Keyroom (Charlie) sees of it: a `fetch` between Charlie and the
// devserver answers Charlie's `/keys/query` without Bob's keys and with
// `failures: { <Bob's server>: { status: 503, … } }` (what Synapse says when a remote server is
// down), and `/keys/claim` without Bob's one-time keys (not taken from the server) and with the
// same failure. When the server "comes back" the fetch lets everything through again. Alice is
// another Keyroom user (on Charlie's server, never offline); Bob is the peer we did not write.
// See docs/security.md for the table.
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { FetchLike } from "../../src/client/http.ts";
import { type Clock, systemClock } from "../../src/client/index.ts";
import { KEYS_QUERY_BACKOFF_MS, MAX_KEYS_QUERY_BACKOFF_MS } from "../../src/e2ee/index.ts";
import type { Peer } from "../support/peers/index.ts";
import {
  keyroomRoom,
  keyroomUser,
  krToPeer,
  newPeer,
  scenario,
  seen,
  syncUntil,
  useFixture,
} from "./complement-helpers.ts";
import { devServerFixture, type TestClient } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-complement-federation-");
useFixture(fx);

/** The server part of a user ID (`@bob:hs2` → `hs2`). */
const serverOf = (userId: string): string => userId.slice(userId.indexOf(":") + 1);

const KEY_MAPS = ["device_keys", "master_keys", "self_signing_keys", "user_signing_keys"] as const;

/**
 * Charlie's clock: it stands still unless the test sets it (its sleeps, sync retries, are real),
 * so the engine's key-query back-off ends when the test says, not after seconds of waiting.
 */
function standingClock(): Clock & { set(ms: number): void } {
  let at = Date.now();
  return {
    now: () => at,
    random: () => systemClock.random(),
    sleep: (ms, signal) => systemClock.sleep(ms, signal),
    set: (ms) => {
      at = ms;
    },
  };
}

/**
 * A fetch for Charlie's client that, while `state.offline`, makes the server of `users` look down
 * from Charlie's server: their keys are left out of `/keys/query` answers and their one-time keys
 * out of `/keys/claim` (the request goes on without them), each answer naming their server under
 * `failures`. With `state.announce` set, the next `/sync` lists those users in
 * `device_lists.changed` (as if their devices had changed), so that Charlie asks for their keys
 * while the server is down. `now` is Charlie's clock (when a failure was answered).
 */
function offlineServer(users: readonly string[], now: () => number = () => Date.now()) {
  const state = {
    offline: false,
    announce: false,
    /** Queries that asked for one of `users` and got a failure; when the last one was answered (`now`). */
    failedQueries: 0,
    lastFailureAt: 0,
    /** Queries answered with their keys (the server back). */
    answeredQueries: 0,
    /** Claims that asked for their one-time keys while the server was down. */
    failedClaims: 0,
  };
  const failure = { status: 503, message: "Not ready for retry" };
  const concerned = (map: unknown): string[] =>
    users.filter((u) => typeof map === "object" && map !== null && u in map);
  const fetchLike: FetchLike = async (input, init) => {
    const path = new URL(input).pathname;
    if (init.method === "POST" && path.endsWith("/keys/claim") && typeof init.body === "string") {
      const body = JSON.parse(init.body) as { one_time_keys?: Record<string, unknown> };
      const theirs = state.offline ? concerned(body.one_time_keys) : [];
      if (theirs.length === 0) return fetch(input, init);
      state.failedClaims++;
      for (const u of theirs) delete body.one_time_keys?.[u];
      const res = await fetch(input, { ...init, body: JSON.stringify(body) });
      if (!res.ok) return res;
      const answer = (await res.json()) as { failures?: Record<string, unknown> };
      answer.failures = { ...answer.failures };
      for (const u of theirs) answer.failures[serverOf(u)] = failure;
      return Response.json(answer);
    }
    if (init.method === "POST" && path.endsWith("/keys/query") && typeof init.body === "string") {
      const body = JSON.parse(init.body) as { device_keys?: Record<string, unknown> };
      const theirs = concerned(body.device_keys);
      const res = await fetch(input, init);
      if (theirs.length === 0 || !res.ok) return res;
      if (!state.offline) {
        state.answeredQueries++;
        return res;
      }
      const answer = (await res.json()) as Record<string, Record<string, unknown> | undefined>;
      for (const map of KEY_MAPS) for (const u of theirs) delete answer[map]?.[u];
      answer.failures = { ...answer.failures };
      for (const u of theirs) answer.failures[serverOf(u)] = failure;
      state.failedQueries++;
      state.lastFailureAt = now();
      return Response.json(answer);
    }
    if (state.announce && init.method === "GET" && path.endsWith("/sync")) {
      const res = await fetch(input, init);
      if (!res.ok) return res;
      state.announce = false;
      const answer = (await res.json()) as { device_lists?: { changed?: string[] } };
      answer.device_lists = {
        ...answer.device_lists,
        changed: [...(answer.device_lists?.changed ?? []), ...users],
      };
      return Response.json(answer);
    }
    return fetch(input, init);
  };
  return { state, fetch: fetchLike };
}

/** Syncs `charlie` a few times (attempts, not time): enough for a query due to go out and be answered. */
async function syncAFewTimes(charlie: TestClient, state: ReturnType<typeof offlineServer>["state"]) {
  for (let i = 0; i < 5 && state.answeredQueries === 0; i++)
    await charlie.client.syncOnce({ timeoutMs: 200 });
}

/**
 * After the server came back: the back-off Charlie's engine put on the users it could not get keys
 * for (KEYS_QUERY_BACKOFF_MS after the last failure, doubling with each one) holds on Charlie's
 * clock, its last millisecond included; set past it, the next syncs ask for their keys again (the
 * scenario's own checks say whether the keys came).
 */
async function requeryAfterBackoff(
  charlie: TestClient,
  clock: ReturnType<typeof standingClock>,
  state: ReturnType<typeof offlineServer>["state"],
) {
  const backoff = Math.min(MAX_KEYS_QUERY_BACKOFF_MS, KEYS_QUERY_BACKOFF_MS * 2 ** (state.failedQueries - 1));
  clock.set(state.lastFailureAt + backoff - 1);
  await syncAFewTimes(charlie, state);
  assert.equal(state.answeredQueries, 0, "Charlie asked again before the back-off ended");
  clock.set(state.lastFailureAt + backoff);
  await syncAFewTimes(charlie, state);
  assert.ok(state.answeredQueries > 0, "Charlie did not ask again once the back-off ended");
}

/** Keyroom's `from` sends in `roomId`; Keyroom's `to` (on the same server) must decrypt it. */
async function sendAndRead(from: TestClient, to: TestClient, roomId: string, body: string): Promise<string> {
  const id = await from.client.sendText(roomId, body);
  await syncUntil(to, () => seen(to, id).body !== undefined, `${body} decrypted`);
  assert.equal(seen(to, id).body, body);
  return id;
}

/** `inviter` invites Keyroom's `joiner` to `roomId`, who joins once its sync shows the invite. */
async function inviteAndJoin(inviter: TestClient, joiner: TestClient, roomId: string): Promise<void> {
  await inviter.client.invite(roomId, joiner.client.userId);
  await syncUntil(joiner, () => joiner.client.getRoom(roomId)?.membership === "invite", "invited");
  await joiner.client.joinRoom(roomId);
  await syncUntil(
    inviter,
    () => inviter.client.getRoom(roomId)?.getMember(joiner.client.userId)?.membership === "join",
    "joined",
  );
}

async function bobSees(bob: Peer, roomId: string, eventId: string) {
  return bob.waitForMessage(roomId, (m) => m.eventId === eventId);
}

describe("complement-crypto federation scenarios: a remote server offline (devserver, injected failures)", () => {
  scenario("TestNewUserCannotGetKeysForOfflineServer", async (kind, open) => {
    const alice = await keyroomUser("alice");
    const bob = await newPeer(kind, open);
    const clock = standingClock();
    const offline = offlineServer([bob.userId], clock.now);
    const charlie = await keyroomUser("charlie", offline.fetch, clock);
    const roomId = await keyroomRoom(alice, bob);
    // Encrypted messaging works.
    await krToPeer(alice, bob, roomId, "Hello world");

    // Bob's server becomes unreachable; Charlie joins and cannot get Bob's device keys.
    offline.state.offline = true;
    await inviteAndJoin(alice, charlie, roomId);
    await syncUntil(charlie, () => offline.state.failedQueries > 0, "Charlie asked for Bob's keys");
    // Charlie's message goes out anyway (Bob's server does not hold the room up): Alice reads it.
    const unreadable = await sendAndRead(
      charlie,
      alice,
      roomId,
      "Bob can't see this because his server is down",
    );
    // (The engine's view: `getUserDevices` would ask the server again, and fail while it is down.)
    assert.deepEqual(
      await charlie.client.crypto.machine.getUserDevices(bob.userId),
      [],
      "Bob's devices unknown",
    );

    // Bob's server comes back; once the back-off ends (on Charlie's clock) Charlie asks again and
    // gets his keys.
    offline.state.offline = false;
    await requeryAfterBackoff(charlie, clock, offline.state);
    const readableId = await charlie.client.sendText(
      roomId,
      "Bob can see this because his server is now back online",
    );
    const readable = await bob.waitForMessage(roomId, (m) => m.eventId === readableId && m.decrypted);
    assert.equal(readable.body, "Bob can see this because his server is now back online");
    // The message sent while Bob's server was down stays undecryptable for him (complement-crypto
    // expects this too: matrix-rust-sdk#2864).
    const missed = await bobSees(bob, roomId, unreadable);
    assert.equal(missed.decrypted, false, "Bob decrypted the message sent while his server was down");
    assert.equal(offline.state.failedClaims, 0, "no claim for devices Charlie did not know");
  });

  scenario("TestExistingSessionCannotGetKeysForOfflineServer", async (kind, open) => {
    const alice = await keyroomUser("alice");
    const bob = await newPeer(kind, open);
    const offline = offlineServer([bob.userId]);
    const charlie = await keyroomUser("charlie", offline.fetch);
    const roomBC = await keyroomRoom(charlie, bob);
    const roomAB = await keyroomRoom(alice, bob);
    // Encrypted messaging works in both rooms: Charlie has an Olm session with Bob's device.
    await krToPeer(alice, bob, roomAB, "Hello world");
    await krToPeer(charlie, bob, roomBC, "Hello world");
    const bobsDevices = await charlie.client.crypto.getUserDevices(bob.userId);
    assert.deepEqual(
      bobsDevices.map((d) => d.deviceId),
      [bob.deviceId],
    );

    // Bob's server becomes unreachable. Beyond complement-crypto: Charlie is also told Bob's
    // devices changed, so it asks for them while the server is down (and gets a failure).
    offline.state.offline = true;
    offline.state.announce = true;
    await inviteAndJoin(alice, charlie, roomAB);
    await syncUntil(charlie, () => offline.state.failedQueries > 0, "Charlie asked for Bob's keys");

    // Olm sessions are per device, not per room: Charlie shares the room key with Bob's device
    // over the session it has, with no claim on the unreachable server.
    const id = await sendAndRead(
      charlie,
      alice,
      roomAB,
      "Bob can see this even though his server is down as we had a session already",
    );
    assert.equal(offline.state.failedClaims, 0, "no claim on the unreachable server");

    // Bob's server comes back: Bob reads it.
    offline.state.offline = false;
    const got = await bob.waitForMessage(roomAB, (m) => m.eventId === id && m.decrypted);
    assert.equal(got.body, "Bob can see this even though his server is down as we had a session already");
  });
});
