// Two devices of one user that verified each other, one asking the other for secrets: for tests of
// what answers to a secret request (`m.secret.send`) are taken, refused or kept.
import assert from "node:assert/strict";
import { MEGOLM_BACKUP_V1_ALGORITHM } from "../../crypto/backup/index.ts";
import { PkDecryption } from "../../crypto/pk/index.ts";
import { decodeBase64, encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { emptyChanges } from "../machine-context.ts";
import { BACKUP_SECRET } from "../secret-storage/names.ts";
import type { SyncChangesResult } from "../sync/to-device.ts";
import type { FakeHomeserver, TestClient } from "./fake-homeserver.ts";

/**
 * `device` holds `backupKey` (by default a new random one) as the key backup keeps it, a store
 * secret, and restarts to load it; the key.
 */
export async function holdingBackupKey(
  device: TestClient,
  backupKey = encodeBase64(randomBytes(32)),
): Promise<string> {
  await device.store.saveChanges({ ...emptyChanges(), secrets: { [BACKUP_SECRET]: backupKey } });
  await device.restart();
  return backupKey;
}

/** The backup public key of a backup key secret (unpadded base64 of the private key). */
export const backupPublicKeyOf = (secret: string): string =>
  PkDecryption.fromPrivateKey(decodeBase64(secret)).publicKey;

/**
 * `device` uses backup version `version` (trusted, of public key `publicKey`) without its key, as
 * one adopted through our signatures, and restarts to load it.
 */
export async function usingVersionWithoutKey(
  device: TestClient,
  version: string,
  publicKey: string,
): Promise<void> {
  await device.store.saveChanges({
    ...emptyChanges(),
    backupState: {
      version,
      algorithm: MEGOLM_BACKUP_V1_ALGORITHM,
      authData: { public_key: publicKey },
      trusted: true,
    },
  });
  await device.restart();
}

/** `a` and `b` (devices of one user) fetch the user's devices and mark each other verified. */
export async function verifyEachOther(a: TestClient, b: TestClient): Promise<void> {
  for (const c of [a, b]) {
    await c.machine.receiveKeysChanges([c.userId], []);
    await c.flush();
  }
  await a.machine.markDeviceVerified(b.userId, b.deviceId);
  await b.machine.markDeviceVerified(a.userId, a.deviceId);
  await a.flush();
  await b.flush();
}

/** The `request_id` of the first `m.secret.request` `userId` sent. */
export function secretRequestId(hs: FakeHomeserver, userId: string): string {
  const request = hs.sentToDevice.find((m) => m.eventType === "m.secret.request" && m.from === userId);
  const requestId = (request?.content as { request_id?: string } | undefined)?.request_id;
  assert.ok(requestId);
  return requestId;
}

/** `from` answers request `requestId` of `to` with `secret`; what `to` makes of it on its next sync. */
export async function answerSecretRequest(
  from: TestClient,
  to: TestClient,
  requestId: string,
  secret: string,
): Promise<SyncChangesResult> {
  await from.machine.encryptToDevice("m.secret.send", [{ userId: to.userId, deviceId: to.deviceId }], {
    request_id: requestId,
    secret,
  });
  await from.flush();
  return to.sync();
}

/**
 * `from` has answered `to`'s request once (one message in `to`'s inbox); it answers again with
 * `secret` over the same Olm session, and that second answer is delivered first.
 */
export async function deliverAnswerFirst(
  from: TestClient,
  to: TestClient,
  requestId: string,
  secret: string,
): Promise<void> {
  const inbox = from.hs.device(to.userId, to.deviceId).inbox;
  assert.equal(inbox.length, 1);
  const { request } = await from.machine.encryptToDevice(
    "m.secret.send",
    [{ userId: to.userId, deviceId: to.deviceId }],
    { request_id: requestId, secret },
  );
  assert.ok(request);
  await from.flush();
  assert.equal(inbox.length, 2);
  inbox.unshift(inbox.pop() as (typeof inbox)[number]);
}

/** Counts the request cancellations `userId` sends from now on (a settled request tells our devices). */
export function cancellationsFromNow(hs: FakeHomeserver, userId: string): () => number {
  const sentBefore = hs.sentToDevice.length;
  return () =>
    hs.sentToDevice
      .slice(sentBefore)
      .filter(
        (m) =>
          m.eventType === "m.secret.request" &&
          m.from === userId &&
          (m.content as { action?: string }).action === "request_cancellation",
      ).length;
}
