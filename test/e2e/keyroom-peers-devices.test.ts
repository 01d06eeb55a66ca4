// Keyroom with clients we did not write, through the devserver, on the Olm and device-list paths
// the complement scenarios leave out: Keyroom building its Olm session on matrix-js-sdk's fallback
// key (js-sdk's one-time keys all claimed away), and a peer sharing its room key with a Keyroom
// device that an existing room member logs in later.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FetchLike } from "../../src/client/http.ts";
import { JsSdkPeer, PEER_TEST_TIMEOUT_MS, type Peer, skipUnlessAvailable } from "../support/peers/index.ts";
import {
  keyroomRoom,
  keyroomUser,
  krToPeer,
  newPeer,
  peerToKr,
  scenario,
  seen,
  syncUntil,
  useFixture,
} from "./complement-helpers.ts";
import { devServerFixture, keyroomDevice, uniq } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-peers-devices-");
useFixture(fx);

type ClaimedKey = { key?: string; fallback?: boolean };

describe("Keyroom claims matrix-js-sdk's fallback key (devserver)", () => {
  it("js-sdk's one-time keys exhausted: Keyroom's Olm session is built on the fallback key and js-sdk decrypts", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const open: Peer[] = [];
    try {
      // What the server handed Keyroom for each device it claimed a key of.
      const claimed = new Map<string, ClaimedKey[]>();
      const recording: FetchLike = async (url, init) => {
        const res = await fetch(url, init);
        if (!url.includes("/keys/claim") || !res.ok) return res;
        const json = (await res.clone().json()) as {
          one_time_keys?: Record<string, Record<string, Record<string, ClaimedKey>>>;
        };
        for (const [user, devices] of Object.entries(json.one_time_keys ?? {})) {
          for (const [device, keys] of Object.entries(devices)) {
            claimed.set(`${user}|${device}`, [
              ...(claimed.get(`${user}|${device}`) ?? []),
              ...Object.values(keys),
            ]);
          }
        }
        return res;
      };
      const kr = await keyroomUser("fbk", recording);
      // js-sdk's key uploads can be held: from the claims below until Keyroom's own, so that a
      // sync of js-sdk's in between (its long-poll ending) cannot top its one-time keys up.
      let uploadsHeld: Promise<void> | undefined;
      const gated: typeof fetch = async (input, init) => {
        const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
        if (uploadsHeld !== undefined && url.includes("/keys/upload")) await uploadsHeld;
        return fetch(input, init);
      };
      const name = uniq("fbjs");
      const js = await JsSdkPeer.register(fx.hs.baseUrl, name, "pw", { fetch: gated });
      open.push(js);
      // A shared room, and nothing sent yet in either direction: no Olm session exists.
      const roomId = await keyroomRoom(kr, js);
      await js.waitForDevices(kr.client.userId, (ids) => ids.includes(kr.client.deviceId));

      // Claim js-sdk's one-time keys away until the server hands out the fallback key.
      let releaseUploads = (): void => {};
      uploadsHeld = new Promise<void>((resolve) => {
        releaseUploads = resolve;
      });
      const thief = await fx.hs.register(uniq("thief"), "pw");
      let fallback: ClaimedKey | undefined;
      for (let i = 0; i < 1000 && fallback === undefined; i++) {
        const res = await fx.hs.api("POST", "/keys/claim", {
          token: thief.accessToken,
          body: { one_time_keys: { [js.userId]: { [js.deviceId]: "signed_curve25519" } } },
        });
        const got = Object.values(res.json.one_time_keys?.[js.userId]?.[js.deviceId] ?? {}) as ClaimedKey[];
        assert.equal(got.length, 1, "a one-time key or the fallback key, never nothing");
        if (got[0]?.fallback === true) fallback = got[0];
      }
      assert.ok(fallback?.key, "js-sdk publishes a fallback key");

      const body = "Keyroom's room key over an Olm session on the fallback key";
      const id = await kr.client.sendText(roomId, body);
      const ours = claimed.get(`${js.userId}|${js.deviceId}`);
      assert.equal(ours?.length, 1, "Keyroom claimed one key of the js-sdk device");
      assert.equal(ours?.[0]?.fallback, true, "and the server handed it the fallback key");
      assert.equal(ours?.[0]?.key, fallback.key);
      uploadsHeld = undefined;
      releaseUploads();
      const m = await js.waitForMessage(roomId, (x) => x.eventId === id && x.decrypted);
      assert.equal(m.body, body);
      // The session works on: js-sdk answers over it, and Keyroom decrypts.
      await peerToKr(js, kr, roomId, "and back");
    } finally {
      for (const p of open) await p.close();
    }
  });
});

describe("a peer shares its room key with a new Keyroom device of a room member (devserver)", () => {
  scenario("a member logs in a second Keyroom device", async (kind, open) => {
    const first = await keyroomUser("nd");
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(first, peer);
    await krToPeer(first, peer, roomId, "hello from the first device");
    const before = await peerToKr(peer, first, roomId, "hello to the first device");

    // The first device does not sync again: it cannot forward the key to the second one.
    const second = await keyroomDevice(fx, first.name, "login");
    await syncUntil(second, () => second.client.getRoom(roomId)?.membership === "join", "room synced");
    await peer.waitForDevices(first.client.userId, (ids) => ids.includes(second.client.deviceId));
    const id = await peer.sendText(roomId, "hello to both devices");
    await syncUntil(second, () => seen(second, id).body !== undefined, "decrypted by the second device");
    assert.equal(seen(second, id).body, "hello to both devices");
    // The message before the login was never shared with the new device (which has the event).
    assert.ok(seen(second, before).present, "the earlier event reached the second device");
    assert.equal(seen(second, before).body, undefined);
  });
});
