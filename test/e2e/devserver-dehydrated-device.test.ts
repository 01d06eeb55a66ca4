// Dehydrated devices on the devserver (MSC3814, unstable prefix): upload, fetch, replace, delete,
// to-device delivery to the dehydrated device and paging through its events.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { randomBytes } from "../../src/crypto/primitives/index.ts";
import { DEHYDRATED_EVENTS_PAGE } from "../../src/devserver/routes/dehydrated-device.ts";
import { createDehydratedDevice, DEHYDRATED_DEVICE_PATH } from "../../src/e2ee/dehydration/index.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

describe("devserver dehydrated devices (MSC3814)", () => {
  let s: TestDevServer;
  before(async () => {
    s = await startTestDevServer();
  });
  after(() => s.close());

  it("stores the device, lists its keys, queues to-device for it and pages its events (POST and GET drafts)", async () => {
    const alice = await s.register();
    const bob = await s.register();
    const none = await s.api("GET", DEHYDRATED_DEVICE_PATH, { token: alice.accessToken });
    assert.equal(none.status, 404);
    assert.equal(none.json.errcode, "M_NOT_FOUND");

    const { deviceId, body } = createDehydratedDevice({
      userId: alice.userId,
      key: randomBytes(32),
      displayName: "Dehydrated",
    });
    const put = await s.api("PUT", DEHYDRATED_DEVICE_PATH, { token: alice.accessToken, body });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    assert.equal(put.json.device_id, deviceId);
    const got = await s.api("GET", DEHYDRATED_DEVICE_PATH, { token: alice.accessToken });
    assert.deepEqual(got.json, { device_id: deviceId, device_data: body.device_data });

    // Others see it with its keys (dehydrated: true) and can claim its one-time keys.
    const query = await s.api("POST", "/keys/query", {
      token: bob.accessToken,
      body: { device_keys: { [alice.userId]: [] } },
    });
    assert.equal(query.json.device_keys[alice.userId][deviceId].dehydrated, true);
    const claim = await s.api("POST", "/keys/claim", {
      token: bob.accessToken,
      body: { one_time_keys: { [alice.userId]: { [deviceId]: "signed_curve25519" } } },
    });
    assert.equal(Object.keys(claim.json.one_time_keys[alice.userId][deviceId]).length, 1);

    // More to-device messages than one page.
    const total = DEHYDRATED_EVENTS_PAGE + 5;
    for (let i = 0; i < total; i++) {
      const sent = await s.api("PUT", `/sendToDevice/m.test/t${i}`, {
        token: bob.accessToken,
        body: { messages: { [alice.userId]: { [deviceId]: { n: i } } } },
      });
      assert.equal(sent.status, 200);
    }
    const eventsPath = `${DEHYDRATED_DEVICE_PATH}/${encodeURIComponent(deviceId)}/events`;
    const first = await s.api("POST", eventsPath, { token: alice.accessToken, body: {} });
    assert.equal(first.json.events.length, DEHYDRATED_EVENTS_PAGE);
    assert.deepEqual(first.json.events[0], { type: "m.test", sender: bob.userId, content: { n: 0 } });
    const second = await s.api("POST", eventsPath, {
      token: alice.accessToken,
      body: { next_batch: first.json.next_batch },
    });
    assert.deepEqual(
      second.json.events.map((e: { content: { n: number } }) => e.content.n),
      [100, 101, 102, 103, 104],
    );
    const third = await s.api("POST", eventsPath, {
      token: alice.accessToken,
      body: { next_batch: second.json.next_batch },
    });
    assert.deepEqual(third.json.events, []);
    assert.equal(typeof third.json.next_batch, "string"); // the POST draft always gives one
    // Reading does not consume (MSC3814): an interrupted rehydration starts over.
    const again = await s.api("POST", eventsPath, { token: alice.accessToken, body: {} });
    assert.equal(again.json.events.length, DEHYDRATED_EVENTS_PAGE);

    // The current draft (GET, `from`): `next_batch` only while more remain.
    const g1 = await s.api("GET", eventsPath, { token: alice.accessToken });
    assert.equal(g1.json.events.length, DEHYDRATED_EVENTS_PAGE);
    const g2 = await s.api("GET", `${eventsPath}?from=${g1.json.next_batch}`, { token: alice.accessToken });
    assert.equal(g2.json.events.length, 5);
    assert.equal(g2.json.next_batch, undefined);
    const bad = await s.api("GET", `${eventsPath}?from=x`, { token: alice.accessToken });
    assert.equal(bad.status, 400);

    // Another user's device, or a device that is not the dehydrated one: forbidden.
    const other = await s.api("POST", eventsPath, { token: bob.accessToken, body: {} });
    assert.equal(other.status, 403);
    const wrong = await s.api("POST", `${DEHYDRATED_DEVICE_PATH}/${alice.deviceId}/events`, {
      token: alice.accessToken,
      body: {},
    });
    assert.equal(wrong.status, 403);
  });

  it("a new upload replaces the old device; DELETE removes it; IDs of live devices are refused", async () => {
    const alice = await s.register();
    const make = () =>
      createDehydratedDevice({ userId: alice.userId, key: randomBytes(32), displayName: "d" });
    const one = make();
    const two = make();
    await s.api("PUT", DEHYDRATED_DEVICE_PATH, { token: alice.accessToken, body: one.body });
    await s.api("PUT", DEHYDRATED_DEVICE_PATH, { token: alice.accessToken, body: two.body });
    const devices = (await s.api("GET", "/devices", { token: alice.accessToken })).json.devices as {
      device_id: string;
    }[];
    const ids = devices.map((d) => d.device_id);
    assert.ok(ids.includes(two.deviceId) && !ids.includes(one.deviceId));

    const clash = { ...two.body, device_id: alice.deviceId };
    const refused = await s.api("PUT", DEHYDRATED_DEVICE_PATH, { token: alice.accessToken, body: clash });
    assert.equal(refused.status, 400);

    const del = await s.api("DELETE", DEHYDRATED_DEVICE_PATH, { token: alice.accessToken });
    assert.deepEqual(del.json, { device_id: two.deviceId });
    assert.equal((await s.api("GET", DEHYDRATED_DEVICE_PATH, { token: alice.accessToken })).status, 404);
    assert.equal((await s.api("DELETE", DEHYDRATED_DEVICE_PATH, { token: alice.accessToken })).status, 404);
  });

  it("refuses device keys that are not the device's own, or not signed by it", async () => {
    const alice = await s.register();
    const bob = await s.register();
    const { body } = createDehydratedDevice({ userId: bob.userId, key: randomBytes(32), displayName: "d" });
    const forBob = await s.api("PUT", DEHYDRATED_DEVICE_PATH, { token: alice.accessToken, body });
    assert.equal(forBob.status, 400);
    const mine = createDehydratedDevice({ userId: alice.userId, key: randomBytes(32), displayName: "d" });
    const unsigned = { ...mine.body, device_keys: { ...mine.body.device_keys, signatures: {} } };
    const bad = await s.api("PUT", DEHYDRATED_DEVICE_PATH, { token: alice.accessToken, body: unsigned });
    assert.equal(bad.json.errcode, "M_INVALID_SIGNATURE");
  });
});
