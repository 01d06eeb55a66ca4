// A client whose sender requirement refuses devices not cross-signed (`senderRequirement:
// "refuse"`) refused the in-room verification events of such a device like any message, so it
// could not be verified in a DM at all. Its verification events now reach the verification flow
// (their MACs protect them); its ordinary messages stay refused. A request whose room key came
// after it never reached the flow, from any sender: it does now, once the key decrypts it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FetchLike, VerificationRequest } from "../../src/client/index.ts";
import {
  compareAndConfirm,
  devServerFixture,
  eventById,
  newUser,
  type TestClient,
  until,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-verify-refuse-");

/**
 * A fetch whose /sync answers hand their to-device events over later while `defer` is on: kept
 * back, then added to the first answer after it is turned off (a room key that comes after the
 * event it opens).
 */
function deferringToDevice() {
  const kept: unknown[] = [];
  const state = { defer: false, kept: () => kept.length };
  const fetchImpl: FetchLike = async (url, init) => {
    const res = await fetch(url, init);
    if (!new URL(url).pathname.endsWith("/sync") || res.status !== 200) return res;
    const body = (await res.json()) as { to_device?: { events?: unknown[] } };
    const events = body.to_device?.events ?? [];
    if (state.defer) {
      kept.push(...events);
      body.to_device = { events: [] };
    } else if (kept.length > 0) {
      body.to_device = { events: [...kept.splice(0), ...events] };
    }
    return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
  };
  return { fetch: fetchImpl, state };
}

/**
 * Alice (cross-signed, under `senderRequirement`) and Bob (not cross-signed) in an encrypted DM that
 * Bob made and Alice joined; Alice's requests go through `fetch` when given.
 */
async function dmWithUncrossSignedBob(
  prefixes: [alice: string, bob: string],
  senderRequirement: "refuse" | "accept",
  fetch?: FetchLike,
): Promise<{ alice: TestClient; bob: TestClient; roomId: string }> {
  const alice = await newUser(fx.hs, fx.dir, prefixes[0], { senderRequirement }, fetch);
  fx.open.push(alice.client);
  const bob = await newUser(fx.hs, fx.dir, prefixes[1]); // no cross-signing: his device is not cross-signed
  fx.open.push(bob.client);
  await alice.client.bootstrapCrossSigning();
  const roomId = await bob.client.createDirectRoom(alice.client.userId, { encrypted: true });
  await alice.client.syncOnce({ timeoutMs: 0 });
  await alice.client.joinRoom(roomId);
  await bob.client.syncOnce({ timeoutMs: 0 });
  return { alice, bob, roomId };
}

/** Alice accepts Bob's request and they verify by SAS: Alice then sees Bob's device verified. */
async function verifyBySas(
  alice: TestClient,
  bob: TestClient,
  outgoing: VerificationRequest,
  request: VerificationRequest,
): Promise<void> {
  await alice.client.startSync();
  await bob.client.startSync();
  try {
    await request.accept();
    await outgoing.waitFor((s) => s.phase === "ready");
    await outgoing.startSas();
    await compareAndConfirm(outgoing, request);
    const seen = await alice.client.getUserDevices(bob.client.userId);
    assert.equal(seen.find((d) => d.deviceId === bob.client.deviceId)?.trust, "verified");
  } finally {
    await alice.client.stopSync();
    await bob.client.stopSync();
  }
}

/**
 * Bob (not cross-signed) asks Alice to verify in a DM; Alice gets the request before its room key
 * (kept back one sync), then the key. Returns once her flow has the request: they verify by SAS.
 */
async function requestWithLateKey(senderRequirement: "refuse" | "accept"): Promise<TestClient> {
  const deferring = deferringToDevice();
  const { alice, bob, roomId } = await dmWithUncrossSignedBob(
    ["rla", "rlb"],
    senderRequirement,
    deferring.fetch,
  );

  let incoming: VerificationRequest | undefined;
  alice.client.on("verification.request", (r) => {
    incoming = r;
  });
  const arrived = () => incoming;
  deferring.state.defer = true;
  const outgoing = await bob.client.requestVerification(alice.client.userId);
  assert.equal(outgoing.roomId, roomId);
  await alice.client.syncOnce({ timeoutMs: 0 }); // the request, without its room key
  assert.ok(deferring.state.kept() > 0, "the room key was kept back");
  assert.ok(
    alice.events.some(
      (e) =>
        e.roomId === roomId && e.encryption?.decrypted === false && e.encryption.code === "UNKNOWN_SESSION",
    ),
    "the request came before its key",
  );
  assert.equal(arrived(), undefined, "not before its key");

  deferring.state.defer = false;
  await alice.client.syncOnce({ timeoutMs: 0 }); // the room key: the request decrypts now
  await until("alice gets bob's request", () => arrived() !== undefined);
  const request = arrived() as VerificationRequest;
  assert.equal(request.otherUserId, bob.client.userId);
  await verifyBySas(alice, bob, outgoing, request);
  return alice;
}

describe("in-room verification under senderRequirement: refuse", () => {
  it("a device not cross-signed is verified in a DM; its messages stay refused", async () => {
    const { alice, bob, roomId } = await dmWithUncrossSignedBob(["ra", "rb"], "refuse");

    const text = await bob.client.sendText(roomId, "an ordinary message");
    let incoming: VerificationRequest | undefined;
    alice.client.on("verification.request", (r) => {
      incoming = r;
    });
    const outgoing = await bob.client.requestVerification(alice.client.userId);
    assert.equal(outgoing.roomId, roomId);
    await alice.client.syncOnce({ timeoutMs: 0 });
    const refused = eventById(alice, text).encryption;
    assert.ok(refused?.decrypted === false);
    assert.equal(refused.code, "SENDER_NOT_CROSS_SIGNED", "ordinary messages stay refused");
    await until("alice gets bob's request", () => incoming !== undefined);
    const request = incoming as VerificationRequest;
    assert.equal(request.otherUserId, bob.client.userId);
    await verifyBySas(alice, bob, outgoing, request);
  });

  it("a request whose room key comes after it reaches the flow once the key decrypts it", async () => {
    const alice = await requestWithLateKey("refuse");
    assert.deepEqual(alice.late, [], "the refused sender's request is not shown as decrypted");
  });

  it("without the requirement too, a request whose key comes late reaches the flow (and is shown decrypted)", async () => {
    const alice = await requestWithLateKey("accept");
    assert.ok(
      alice.late.some(
        (e) => e.encryption?.decrypted === true && e.content.msgtype === "m.key.verification.request",
      ),
    );
  });
});
