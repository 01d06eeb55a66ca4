import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { signJson, verifySignedJson } from "../../crypto/json/index.ts";
import { ed25519PublicKey, ed25519Sign, encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import {
  createDehydratedDevice,
  DEHYDRATED_DEVICE_ONE_TIME_KEYS,
  DehydrationError,
  dehydratedEventsRequest,
  MAX_DEHYDRATED_DEVICE_EVENTS,
  parseDehydratedDevice,
  parseDehydratedEventsPage,
  rehydrateDevice,
} from "./dehydrated-device.ts";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof DehydrationError) return e.code;
    throw e;
  }
  return "no error";
}

const userId = "@alice:example.org";

describe("dehydrated devices (MSC3814)", () => {
  it("builds the upload the rust-sdk builds: signed device keys, 50 one-time keys, a fallback key", () => {
    const key = randomBytes(32);
    const { deviceId, body } = createDehydratedDevice({ userId, key, displayName: "Dehydrated device" });
    assert.deepEqual(Object.keys(body).sort(), [
      "device_data",
      "device_id",
      "device_keys",
      "fallback_keys",
      "initial_device_display_name",
      "one_time_keys",
    ]);
    assert.equal(body.device_keys.dehydrated, true);
    const keys = body.device_keys.keys as Record<string, string>;
    assert.equal(keys[`curve25519:${deviceId}`], deviceId);
    const ed = keys[`ed25519:${deviceId}`] ?? "";
    assert.ok(verifySignedJson(body.device_keys, userId, `ed25519:${deviceId}`, ed));
    assert.equal(Object.keys(body.one_time_keys).length, DEHYDRATED_DEVICE_ONE_TIME_KEYS);
    for (const otk of [...Object.values(body.one_time_keys), ...Object.values(body.fallback_keys)]) {
      assert.ok(verifySignedJson(otk, userId, `ed25519:${deviceId}`, ed));
    }
    assert.deepEqual(
      Object.values(body.fallback_keys).map((k) => k.fallback),
      [true],
    );

    const { deviceId: id, deviceData } = parseDehydratedDevice({
      device_id: deviceId,
      device_data: body.device_data,
    });
    const account = rehydrateDevice(deviceData, key);
    assert.equal(id, deviceId);
    assert.deepEqual(account.identityKeys, { curve25519: deviceId, ed25519: ed });
  });
  it("adds the self-signing key's signature when given one", () => {
    const seed = randomBytes(32);
    const pub = encodeBase64(ed25519PublicKey(seed));
    const secret = new Uint8Array([...seed, ...ed25519PublicKey(seed)]);
    const selfSigning = {
      signObject: <T extends Record<string, unknown>>(u: string, obj: T) =>
        signJson(obj, u, `ed25519:${pub}`, (bytes) => encodeBase64(ed25519Sign(secret, bytes))),
    };
    const { body } = createDehydratedDevice({ userId, key: randomBytes(32), displayName: "d", selfSigning });
    assert.ok(verifySignedJson(body.device_keys, userId, `ed25519:${pub}`, pub));
  });
  it("refuses a wrong key, another format and malformed answers with typed codes", () => {
    const key = randomBytes(32);
    const { body } = createDehydratedDevice({ userId, key, displayName: "d" });
    assert.equal(
      code(() => rehydrateDevice(body.device_data, randomBytes(32))),
      "WRONG_KEY",
    );
    assert.equal(
      code(() => rehydrateDevice({ ...body.device_data, nonce: "AAAA" }, key)),
      "BAD_PICKLE",
    );
    assert.equal(
      code(() =>
        parseDehydratedDevice({
          device_id: "D",
          device_data: { algorithm: "org.matrix.msc3814.v1.olm", device_pickle: "x" },
        }),
      ),
      "UNSUPPORTED_ALGORITHM",
    );
    assert.equal(
      code(() => parseDehydratedDevice({ device_id: "D" })),
      "BAD_RESPONSE",
    );
    assert.equal(
      code(() => createDehydratedDevice({ userId, key: new Uint8Array(8), displayName: "d" })),
      "BAD_ARGUMENT",
    );
  });
  it("pages events until an empty page, a missing next_batch or the cap", () => {
    assert.deepEqual(dehydratedEventsRequest(), {});
    assert.deepEqual(dehydratedEventsRequest("b1"), { next_batch: "b1" });
    assert.deepEqual(parseDehydratedEventsPage({ events: [1, 2], next_batch: "b2" }, 0), {
      events: [1, 2],
      nextBatch: "b2",
      done: false,
      truncated: false,
    });
    assert.equal(parseDehydratedEventsPage({ events: [], next_batch: "b3" }, 5).done, true);
    assert.equal(parseDehydratedEventsPage({ events: [1] }, 5).done, true);
    const capped = parseDehydratedEventsPage(
      { events: [1, 2, 3], next_batch: "b" },
      MAX_DEHYDRATED_DEVICE_EVENTS - 1,
    );
    assert.deepEqual(capped.events, [1]);
    assert.equal(capped.done, true);
    assert.equal(capped.truncated, true, "events past the cap were dropped");
    // The cap reached exactly: truncated when the server offers more, not at the last page.
    const full = [1, 2];
    const atCap = MAX_DEHYDRATED_DEVICE_EVENTS - 2;
    assert.equal(parseDehydratedEventsPage({ events: full, next_batch: "b" }, atCap).truncated, true);
    assert.equal(parseDehydratedEventsPage({ events: full }, atCap).truncated, false);
    assert.equal(parseDehydratedEventsPage({ events: [1] }, 5).truncated, false);
    assert.equal(
      code(() => parseDehydratedEventsPage({ events: "x" }, 0)),
      "BAD_RESPONSE",
    );
    assert.equal(
      code(() => parseDehydratedEventsPage({ events: [], next_batch: 3 }, 0)),
      "BAD_RESPONSE",
    );
  });
  it("parsers throw only DehydrationError for any JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        code(() => parseDehydratedDevice(value));
        code(() => parseDehydratedDevice({ device_id: "D", device_data: value }));
        code(() => parseDehydratedEventsPage(value, 0));
      }),
      { numRuns: 300 },
    );
  });
});
