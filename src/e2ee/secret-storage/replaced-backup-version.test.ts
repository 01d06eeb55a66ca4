// The backup version this device uses was replaced on the server by another device of ours, and
// this device has not checked since: it still counts the old version as current. That other device
// answers our request for the backup key with the new version's key, which is refused here as not
// current. The refused key is kept (bounded) and judged again after the version check the client
// makes on the refusal: once the new version is adopted, it is taken, with no restart.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MEGOLM_BACKUP_V1_ALGORITHM } from "../../crypto/backup/index.ts";
import { PkDecryption } from "../../crypto/pk/index.ts";
import { decodeBase64, encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { emptyChanges } from "../machine-context.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import {
  answerSecretRequest,
  backupPublicKeyOf,
  cancellationsFromNow,
  secretRequestId,
  usingVersionWithoutKey,
  verifyEachOther,
} from "../test-support/secret-requests.ts";
import { MAX_REFUSED_BACKUP_KEYS } from "./gossip.ts";
import { BACKUP_SECRET } from "./names.ts";

const ALICE = "@alice:example.org";

/**
 * NEW uses version "7" without its key; OLD replaces it with version "8" (signed by OLD's device
 * and our master key when `signed`, else a bare `auth_data`, as a device we do not trust would
 * leave) and holds its key. NEW asks for the backup key.
 */
async function replaced(signed: boolean) {
  const hs = new FakeHomeserver();
  const old = await TestClient.create(hs, { userId: ALICE, deviceId: "OLD" });
  await old.bootstrapCrossSigning();
  const fresh = await TestClient.create(hs, { userId: ALICE, deviceId: "NEW" });
  const first = PkDecryption.create().publicKey;
  await usingVersionWithoutKey(fresh, "7", first);
  await verifyEachOther(old, fresh);

  let body: Record<string, unknown>;
  let right: string;
  if (signed) {
    const { request, privateKey } = await old.machine.backup.prepareVersion();
    await old.machine.backup.versionCreated(request.id, { version: "8" });
    right = encodeBase64(privateKey);
    body = { version: "8", ...request.body };
  } else {
    right = encodeBase64(randomBytes(32));
    await old.store.saveChanges({
      ...emptyChanges(),
      secrets: { [BACKUP_SECRET]: right },
      backupState: {
        version: "8",
        algorithm: MEGOLM_BACKUP_V1_ALGORITHM,
        authData: { public_key: backupPublicKeyOf(right) },
        trusted: true,
      },
    });
    await old.restart();
    await old.flush();
    body = {
      version: "8",
      algorithm: MEGOLM_BACKUP_V1_ALGORITHM,
      auth_data: { public_key: backupPublicKeyOf(right) },
    };
  }

  await fresh.machine.requestSecrets([BACKUP_SECRET]);
  await fresh.flush();
  const requestId = secretRequestId(hs, ALICE);
  const cancellations = cancellationsFromNow(hs, ALICE);
  /** OLD answers the request with `secret`; what NEW makes of it. */
  const answer = (secret: string) => answerSecretRequest(old, fresh, requestId, secret);
  return { old, fresh, right, body, answer, cancellations };
}

describe("the backup version replaced elsewhere, then its key sent to us", () => {
  it("refused against the old version, then taken once a version check adopts the new one", async () => {
    const { old, fresh, right, body, cancellations } = await replaced(true);
    await old.sync(); // OLD answers with the new version's key
    const result = await fresh.sync();
    assert.deepEqual(result.secrets, []);
    assert.deepEqual(result.refusedSecrets, [
      { name: BACKUP_SECRET, deviceId: "OLD", reason: "not_current" },
    ]);
    assert.ok(!JSON.stringify(result.refusedSecrets).includes(right));
    let status = await fresh.machine.backup.status();
    assert.equal(status.version, "7");
    assert.equal(status.hasKey, false);
    assert.equal(cancellations(), 0);

    // The client checks the server's version on the refusal: version 8, signed by OLD.
    const check = await fresh.machine.backup.checkVersion(body);
    assert.equal(check.kind, "adopted");
    status = await fresh.machine.backup.status();
    assert.equal(status.version, "8");
    assert.equal(status.hasKey, true, "the refused key, judged again, is the new version's");
    assert.equal(status.trusted, true);
    await fresh.flush();
    assert.equal(cancellations(), 1, "the request is settled once the key is taken");
    // Nothing is kept or handed out again.
    assert.deepEqual((await fresh.sync()).secrets, []);
  });

  it("a new version we do not trust: the refused key goes to the client with the next sync, once", async () => {
    const { old, fresh, right, body, cancellations } = await replaced(false);
    await old.sync();
    assert.equal((await fresh.sync()).refusedSecrets.length, 1);
    const check = await fresh.machine.backup.checkVersion(body);
    assert.equal(check.kind, "stopped");
    // No version known to be current now: the key goes to the client, which checks it with the server.
    assert.deepEqual(
      (await fresh.sync()).secrets.map((s) => s.value),
      [right],
    );
    assert.deepEqual((await fresh.sync()).secrets, []);
    assert.equal(cancellations(), 0);
    await fresh.machine.backup.useVersion(body, decodeBase64(right));
    await fresh.flush();
    assert.equal(cancellations(), 1);
    const status = await fresh.machine.backup.status();
    assert.equal(status.version, "8");
    assert.equal(status.hasKey, true);
  });

  it("a check that finds the same version keeps the refused key refused", async () => {
    const { old, fresh, body } = await replaced(true);
    await old.sync();
    await fresh.sync();
    const seven = {
      version: "7",
      algorithm: MEGOLM_BACKUP_V1_ALGORITHM,
      auth_data: (await fresh.store.getBackupState())?.authData,
    };
    assert.equal((await fresh.machine.backup.checkVersion(seven)).kind, "same");
    assert.equal((await fresh.machine.backup.status()).hasKey, false);
    // Still kept: a later check that sees the new version takes it.
    await fresh.machine.backup.checkVersion(body);
    assert.equal((await fresh.machine.backup.status()).hasKey, true);
  });

  it(`refused keys kept are bounded by MAX_REFUSED_BACKUP_KEYS (${MAX_REFUSED_BACKUP_KEYS}), the oldest forgotten first`, async () => {
    const { old, fresh, right, body, answer } = await replaced(true);
    await old.sync(); // answers with the right key (over a new Olm session)
    assert.equal((await fresh.sync()).refusedSecrets.length, 1);
    // A device of ours answering with ever new keys pushes the right one out.
    for (let i = 0; i < MAX_REFUSED_BACKUP_KEYS; i++) await answer(encodeBase64(randomBytes(32)));
    await fresh.machine.backup.checkVersion(body);
    let status = await fresh.machine.backup.status();
    assert.equal(status.version, "8");
    assert.equal(status.hasKey, false);
    // Answered again, it is the current version's key now: taken at once.
    const result = await answer(right);
    assert.deepEqual(
      result.secrets.map((s) => s.value),
      [right],
    );
    await fresh.machine.backup.useVersion(body, decodeBase64(right));
    status = await fresh.machine.backup.status();
    assert.equal(status.hasKey, true);
  });
});
