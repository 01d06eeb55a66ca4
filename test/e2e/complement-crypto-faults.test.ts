// complement-crypto's scenarios about failing requests (it fails them in mitmproxy; here a `fetch`
// between Keyroom and the devserver does), with a peer we did not write on the other side: the
// request is retried and nothing is lost. See docs/security.md for the table.
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { FetchLike } from "../../src/client/http.ts";
import { loginPeer, passwordFor } from "../support/peers/index.ts";
import {
  keyroomRoom,
  keyroomUser,
  krToPeer,
  newPeer,
  peerToKr,
  scenario,
  useFixture,
} from "./complement-helpers.ts";
import { devServerFixture, eventById } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-complement-faults-");
useFixture(fx);

/**
 * A fetch that answers the next `count` requests whose path matches `pattern` with a 502 (the
 * server never sees them) while `armed`; counts what it failed.
 */
function failing(pattern: RegExp) {
  const state = { armed: false, count: 1, failed: 0 };
  const fetchLike: FetchLike = async (input, init) => {
    if (state.armed && state.count > 0 && pattern.test(new URL(input).pathname)) {
      state.count--;
      state.failed++;
      return Response.json({ errcode: "M_UNKNOWN", error: "injected failure" }, { status: 502 });
    }
    return fetch(input, init);
  };
  return { state, fetch: fetchLike };
}

describe("complement-crypto scenarios: failing requests are retried (devserver)", () => {
  scenario("TestFailedKeysClaimRetries", async (kind, open) => {
    const f = failing(/\/keys\/claim$/);
    const kr = await keyroomUser("kr", f.fetch);
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    f.state.armed = true;
    await krToPeer(kr, peer, roomId, "after a failed claim");
    assert.equal(f.state.failed, 1, "the claim failed once");
  });

  scenario("TestFailedDeviceKeyDownloadRetries", async (kind, open) => {
    const f = failing(/\/keys\/query$/);
    f.state.armed = true;
    f.state.count = 2;
    const kr = await keyroomUser("kr", f.fetch);
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    await krToPeer(kr, peer, roomId, "after failed key queries");
    assert.ok(f.state.failed >= 1, "a key query failed");
  });

  scenario("TestClientRetriesSendToDevice", async (kind, open) => {
    const f = failing(/\/sendToDevice\//);
    const kr = await keyroomUser("kr", f.fetch);
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    f.state.armed = true;
    await krToPeer(kr, peer, roomId, "after a failed to-device send");
    assert.equal(f.state.failed, 1, "the room key's to-device send failed once");
  });

  scenario("TestToDeviceMessagesArentLostWhenKeysQueryFails", async (kind, open) => {
    // A new device of the peer user appears while Keyroom's key queries fail: the sync that tells
    // Keyroom about it (device list change) also carries that device's room key, and the query
    // Keyroom then makes for it fails, as does every later one. The room key must not be lost.
    const f = failing(/\/keys\/query$/);
    const kr = await keyroomUser("kr", f.fetch);
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    f.state.armed = true;
    f.state.count = Number.POSITIVE_INFINITY;
    const name = peer.userId.slice(1, peer.userId.indexOf(":"));
    const second = await loginPeer(kind, fx.hs.baseUrl, name, passwordFor(name));
    open.push(second);
    await second.waitForDevices(kr.client.userId, (ids) => ids.includes(kr.client.deviceId));
    const id = await peerToKr(second, kr, roomId, "while key queries fail");
    assert.ok(f.state.failed >= 1, "Keyroom's key query for the new device failed");
    const got = eventById(kr, id);
    assert.equal(got.encryption?.decrypted && got.encryption.senderDeviceId, second.deviceId);
  });
});
