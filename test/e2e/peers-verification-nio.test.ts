// SAS verification between Keyroom and matrix-nio (libolm) over to-device, in the flow nio uses (a
// start without a request, legacy `hkdf-hmac-sha256` MACs), both directions. Afterwards each side
// reports the other device verified.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { MatrixClient, VerificationRequest } from "../../src/client/index.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";
import {
  closePeers,
  NioPeer,
  PEER_TEST_TIMEOUT_MS,
  type Peer,
  skipUnlessAvailable,
} from "../support/peers/index.ts";
import { encryptedClient, uniq } from "./e2ee-client-helpers.ts";

let hs: TestDevServer;
let dir: string;
const clients: MatrixClient[] = [];
const peers: Peer[] = [];

before(async () => {
  hs = await startTestDevServer();
  dir = await mkdtemp(join(tmpdir(), "keyroom-verify-nio-"));
});
after(async () => {
  for (const c of clients) await c.stopSync().catch(() => undefined);
  await closePeers(peers);
  for (const c of clients) await c.close().catch(() => undefined);
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

/** A Keyroom user and an nio user sharing an encrypted room, so that each knows the other's device. */
async function pair(): Promise<{ kr: MatrixClient; nio: NioPeer }> {
  const name = uniq("vn");
  const kr = encryptedClient(hs, join(dir, name));
  clients.push(kr);
  await kr.register({ username: name, password: "pw" });
  const nio = await NioPeer.register(hs.baseUrl, uniq("vnio"), "pw");
  peers.push(nio);
  const roomId = await kr.createRoom({ encrypted: true, invite: [nio.userId] });
  await nio.waitForMembership(roomId, nio.userId, "invite");
  await nio.join(roomId);
  await nio.waitForDevices(kr.userId, (ids) => ids.includes(kr.deviceId as string));
  await kr.startSync();
  return { kr, nio };
}

async function compareAndConfirm(nio: NioPeer, txn: string, ours: VerificationRequest): Promise<void> {
  const [theirs, state] = await Promise.all([
    nio.waitForSas((s) => s.transactionId === txn && (s.emoji !== null || s.canceled)),
    ours.waitFor((s) => s.sas?.decimals !== undefined || s.phase === "cancelled"),
  ]);
  assert.equal(theirs.canceled, false, `nio cancelled: ${theirs.cancelCode}`);
  assert.equal(state.cancel, undefined);
  // Symbols, not names: nio names some emoji differently from the spec ("Wrench" for "Spanner").
  const bare = (e: string) => e.replace(/\uFE0F/g, "");
  assert.deepEqual(
    theirs.emoji?.map(bare),
    state.sas?.emoji?.map((e) => bare(e.emoji)),
  );
  assert.deepEqual(theirs.decimals, state.sas?.decimals);
  await ours.confirm();
  await nio.confirmSas(txn);
  const done = await nio.waitForSas((s) => s.transactionId === txn && (s.verified || s.canceled));
  assert.equal(done.verified, true, `nio: ${done.cancelCode}`);
  const end = await ours.finished();
  assert.equal(end.phase, "done", JSON.stringify(end.cancel));
}

describe("verification: Keyroom ↔ matrix-nio, start without request (devserver)", () => {
  it("Keyroom starts SAS, nio accepts", { timeout: PEER_TEST_TIMEOUT_MS }, async (t) => {
    if (skipUnlessAvailable(t, ["nio"])) return;
    const { kr, nio } = await pair();
    const ours = await kr.startSasVerification(nio.userId, nio.deviceId);
    const incoming = await nio.waitForSas((s) => !s.weStarted && s.userId === kr.userId);
    await nio.acceptSas(incoming.transactionId);
    await compareAndConfirm(nio, incoming.transactionId, ours);
    assert.equal(await nio.deviceVerified(kr.userId, kr.deviceId as string), true);
    const devices = await kr.getUserDevices(nio.userId);
    assert.equal(devices.find((d) => d.deviceId === nio.deviceId)?.trust, "verified");
  });

  it("nio starts SAS, Keyroom accepts", { timeout: PEER_TEST_TIMEOUT_MS }, async (t) => {
    if (skipUnlessAvailable(t, ["nio"])) return;
    const { kr, nio } = await pair();
    const incoming = new Promise<VerificationRequest>((resolve) => {
      const off = kr.on("verification.request", (r) => {
        off();
        resolve(r);
      });
    });
    const txn = await nio.startSas(kr.userId, kr.deviceId as string);
    const ours = await incoming;
    assert.equal(ours.flowId, txn);
    assert.equal(ours.snapshot.sas?.stage, "accept_pending");
    await ours.accept();
    await compareAndConfirm(nio, txn, ours);
    assert.equal(await nio.deviceVerified(kr.userId, kr.deviceId as string), true);
    const devices = await kr.getUserDevices(nio.userId);
    assert.equal(devices.find((d) => d.deviceId === nio.deviceId)?.trust, "verified");
  });
});
