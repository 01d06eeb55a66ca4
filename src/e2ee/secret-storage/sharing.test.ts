import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  buildSecretRequest,
  buildSecretRequestCancellation,
  buildSecretRequests,
  buildSecretSend,
  decideSecretRequest,
  decideSecretSend,
  MAX_OUTSTANDING_SECRET_REQUESTS,
  type OutstandingSecretRequest,
  parseSecretRequest,
  parseSecretSend,
  rememberSecretRequest,
} from "./sharing.ts";
import { code } from "./test-support/fixtures.ts";

const own = { userId: "@me:example.org", deviceId: "MINE" };

describe("secret sharing (m.secret.request / m.secret.send)", () => {
  it("builds and parses requests, cancellations and answers", () => {
    const request = buildSecretRequest("m.megolm_backup.v1", "NEW", "req1");
    assert.deepEqual(request, {
      action: "request",
      name: "m.megolm_backup.v1",
      requesting_device_id: "NEW",
      request_id: "req1",
    });
    assert.deepEqual(parseSecretRequest(request), {
      action: "request",
      name: "m.megolm_backup.v1",
      requestingDeviceId: "NEW",
      requestId: "req1",
    });
    assert.deepEqual(parseSecretRequest(buildSecretRequestCancellation("NEW", "req1")), {
      action: "request_cancellation",
      requestingDeviceId: "NEW",
      requestId: "req1",
    });
    assert.deepEqual(parseSecretSend(buildSecretSend("req1", "c2VjcmV0")), {
      requestId: "req1",
      secret: "c2VjcmV0",
    });
    assert.match(buildSecretRequest("s", "D").request_id ?? "", /^[A-Za-z0-9]{24}$/);
  });
  it("refuses malformed content with BAD_ARGUMENT", () => {
    for (const bad of [
      null,
      { action: "request", requesting_device_id: "D", request_id: "r" },
      { action: "steal", name: "s", requesting_device_id: "D", request_id: "r" },
      { action: "request", name: "s", request_id: "r" },
    ]) {
      assert.equal(
        code(() => parseSecretRequest(bad)),
        "BAD_ARGUMENT",
      );
    }
    assert.equal(
      code(() => parseSecretSend({ request_id: "r", secret: "" })),
      "BAD_ARGUMENT",
    );
    assert.equal(
      code(() => parseSecretSend({ request_id: "r", secret: "x".repeat(20_000) })),
      "BAD_ARGUMENT",
    );
  });
  it("answers only our own verified other devices, for what we hold", () => {
    const req = { action: "request", name: "s", requestingDeviceId: "NEW", requestId: "r" } as const;
    const dev = { userId: own.userId, deviceId: "NEW", verified: true };
    assert.deepEqual(decideSecretRequest(req, dev, own, true), { answer: true });
    assert.deepEqual(decideSecretRequest(req, { ...dev, verified: false }, own, true), {
      answer: false,
      reason: "unverified_device",
    });
    assert.deepEqual(decideSecretRequest(req, { ...dev, userId: "@eve:example.org" }, own, true), {
      answer: false,
      reason: "not_own_user",
    });
    assert.deepEqual(decideSecretRequest(req, { ...dev, deviceId: "MINE" }, own, true), {
      answer: false,
      reason: "own_device",
    });
    assert.deepEqual(decideSecretRequest(req, { ...dev, deviceId: "OTHER" }, own, true), {
      answer: false,
      reason: "device_mismatch",
    });
    assert.deepEqual(decideSecretRequest(req, dev, own, false), { answer: false, reason: "not_held" });
  });
  it("accepts a secret only over Olm, from our own verified device, for a request we made", () => {
    const outstanding = new Map([["r", { requestId: "r", name: "m.megolm_backup.v1" }]]);
    const from = { userId: own.userId, deviceId: "OLD", verified: true, viaOlm: true };
    const send = { requestId: "r", secret: "x" };
    assert.deepEqual(decideSecretSend(send, from, own.userId, outstanding), {
      accept: true,
      name: "m.megolm_backup.v1",
    });
    assert.equal(decideSecretSend(send, { ...from, viaOlm: false }, own.userId, outstanding).accept, false);
    assert.equal(decideSecretSend(send, { ...from, verified: false }, own.userId, outstanding).accept, false);
    assert.equal(
      decideSecretSend(send, { ...from, userId: "@eve:x" }, own.userId, outstanding).accept,
      false,
    );
    assert.deepEqual(decideSecretSend({ ...send, requestId: "other" }, from, own.userId, outstanding), {
      accept: false,
      reason: "unknown_request",
    });
  });
  it("a new device asks all its other devices for each secret and remembers a bounded set", () => {
    const { toDevice, outstanding } = buildSecretRequests(own, [
      "m.cross_signing.master",
      "m.megolm_backup.v1",
    ]);
    assert.equal(toDevice.length, 2);
    const first = toDevice[0]?.messages[own.userId]?.["*"];
    assert.deepEqual(parseSecretRequest(first), {
      action: "request",
      name: "m.cross_signing.master",
      requestingDeviceId: "MINE",
      requestId: outstanding[0]?.requestId,
    });
    const map = new Map<string, OutstandingSecretRequest>();
    for (let i = 0; i < MAX_OUTSTANDING_SECRET_REQUESTS + 5; i++)
      rememberSecretRequest(map, { requestId: `r${i}`, name: "s" });
    assert.equal(map.size, MAX_OUTSTANDING_SECRET_REQUESTS);
    assert.ok(!map.has("r0") && map.has(`r${MAX_OUTSTANDING_SECRET_REQUESTS + 4}`));
  });
  it("parsers throw only SecretStorageError for any JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        code(() => parseSecretRequest(v));
        code(() => parseSecretSend(v));
      }),
      { numRuns: 300 },
    );
  });
});
