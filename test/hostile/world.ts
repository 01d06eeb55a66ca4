/**
 * The hostile-input suite's world: Alice (honest), Bob (under attack) and Mallory (a raw Olm peer
 * who sends what no honest client would), on the in-memory homeserver of the E2EE test support.
 * Every case checks its typed outcome, then `afterCase`: nothing Bob stored was lost or changed,
 * and genuine traffic still works.
 */
import assert from "node:assert/strict";
import type { EncryptedRoomEvent } from "../../src/e2ee/decryption/room-events.ts";
import { FakeHomeserver, joined, TestClient } from "../../src/e2ee/test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../../src/e2ee/test-support/raw-peer.ts";

export const ROOM = "!room:x";
export const MEMBERS = joined("@alice:x", "@bob:x");

export interface World {
  readonly hs: FakeHomeserver;
  readonly alice: TestClient;
  readonly bob: TestClient;
  readonly mallory: RawOlmPeer;
  /** Alice's first event, which Bob decrypted. */
  readonly first: EncryptedRoomEvent;
}

export async function makeWorld(): Promise<World> {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  const mallory = new RawOlmPeer("@mallory:x", "M");
  mallory.publish(hs);
  await bob.machine.updateTrackedUsers(["@alice:x", "@mallory:x"]);
  await bob.sync();
  const first = await alice.sendMessage(ROOM, MEMBERS, "first");
  await bob.sync();
  assert.equal((await bob.machine.decryptRoomEvent(first, ROOM)).content.body, "first");
  return { hs, alice, bob, mallory, first };
}

/** What Bob holds that an attack must not lose or change: room keys, Alice's device, his identity. */
export async function snapshot(w: World): Promise<string> {
  const keys = (await w.bob.machine.exportRoomKeys()).map((k) => JSON.stringify(k)).sort();
  const alice = await w.bob.machine.getDevice("@alice:x", "A");
  return JSON.stringify({
    keys,
    alice: alice && { curve25519: alice.curve25519, ed25519: alice.ed25519, trust: alice.trust },
    identity: w.bob.machine.identityKeys,
    olm: (await w.bob.store.getOlmSessions(w.alice.machine.identityKeys.curve25519)).length,
  });
}

let messages = 0;

/** Nothing stored changed since `before`, and Alice's next message (and her first) still decrypt. */
export async function afterCase(w: World, before: string): Promise<void> {
  assert.equal(await snapshot(w), before, "nothing Bob stored was lost or changed");
  const body = `genuine ${++messages}`;
  const event = await w.alice.sendMessage(ROOM, MEMBERS, body);
  const synced = await w.bob.sync();
  assert.deepEqual(synced.failures, []);
  assert.equal((await w.bob.machine.decryptRoomEvent(event, ROOM)).content.body, body);
  assert.equal((await w.bob.machine.decryptRoomEvent(w.first, ROOM)).content.body, "first");
}

/** JSON with a lone surrogate, as a hostile sender can put in any string. */
export const LONE = "\uD800";
export const LONG = "x".repeat(300);
