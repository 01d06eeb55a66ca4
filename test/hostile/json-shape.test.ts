/** Hostile JSON shapes in sync data and HTTP responses: typed errors, and nothing stored changes. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { E2eeError } from "../../src/e2ee/errors.ts";
import type { SyncChanges } from "../../src/e2ee/sync/to-device.ts";
import { RawOlmPeer } from "../../src/e2ee/test-support/raw-peer.ts";
import { afterCase, LONE, LONG, makeWorld, snapshot, type World } from "./world.ts";

const SYNC: [string, unknown][] = [
  ["device_lists.changed with junk entries", { deviceLists: { changed: [1, null, "", LONG, `@${LONE}:x`] } }],
  ["device_lists.left naming ourselves and junk", { deviceLists: { left: ["@bob:x", 5, LONE] } }],
  ["a negative one-time key count", { oneTimeKeyCounts: { signed_curve25519: -5 } }],
  ["a one-time key count that is not a number", { oneTimeKeyCounts: { signed_curve25519: "many" } }],
  ["a huge one-time key count", { oneTimeKeyCounts: { signed_curve25519: 1e300 } }],
  ["unused fallback key types that are not strings", { unusedFallbackKeyTypes: [1, {}, LONE] }],
  ["to-device events that are not objects", { toDevice: [1, "x", null, [], true] }],
  ["to-device not a list", { toDevice: { type: "m.room_key" } }],
  ["device_lists.changed not a list", { deviceLists: { changed: 5 } }],
  ["device_lists not an object", { deviceLists: "changed" }],
  ["unused fallback key types not a list", { unusedFallbackKeyTypes: { signed_curve25519: true } }],
  ["one-time key counts a list", { oneTimeKeyCounts: [50] }],
];

const RESPONSES: [string, "keys_query" | "keys_claim", unknown][] = [
  ["a query response that is null", "keys_query", null],
  ["a query response with failures a string", "keys_query", { device_keys: {}, failures: "x" }],
  ["a claim response that is a list", "keys_claim", []],
  ["a claim response with one_time_keys a string", "keys_claim", { one_time_keys: "x" }],
  ["a claim response with a user's keys a number", "keys_claim", { one_time_keys: { "@alice:x": 3 } }],
];

let peers = 0;

describe("hostile input: JSON shapes", () => {
  let w: World;
  before(async () => {
    w = await makeWorld();
  });
  for (const [name, changes] of SYNC) {
    it(`sync with ${name} → handled, nothing stored changes`, async () => {
      const state = await snapshot(w);
      try {
        await w.bob.machine.receiveSyncChanges(changes as SyncChanges);
      } catch (e) {
        assert.ok(e instanceof E2eeError, `only a typed error may come out, not ${String(e)}`);
      }
      await w.bob.flush();
      await afterCase(w, state);
    });
  }
  for (const [name, type, response] of RESPONSES) {
    it(`${name} → E2eeError BAD_RESPONSE`, async () => {
      const state = await snapshot(w);
      let request = (await w.bob.machine.outgoingRequests()).find((r) => r.type === type);
      if (request === undefined && type === "keys_query") {
        await w.bob.machine.receiveKeysChanges(["@alice:x"], []);
        request = (await w.bob.machine.outgoingRequests()).find((r) => r.type === type);
      }
      if (request === undefined) {
        // A new device Bob has no session with yet: he claims one of its keys.
        const peer = new RawOlmPeer(`@peer${++peers}:x`, "P");
        peer.publish(w.hs);
        await w.bob.machine.updateTrackedUsers([peer.userId]);
        await w.bob.flush();
        request = await w.bob.machine.getMissingSessions([peer.userId]);
      }
      assert.ok(request, "a request to answer");
      await assert.rejects(
        w.bob.machine.markRequestAsSent(request, response),
        (e) => e instanceof E2eeError && e.code === "BAD_RESPONSE",
      );
      await w.bob.flush();
      await afterCase(w, state);
    });
  }
});
