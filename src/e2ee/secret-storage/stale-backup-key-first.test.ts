// We ask our devices for the backup key; one verified device answers first with a key that is not
// the key of the server's current version (it kept the key of a version replaced elsewhere). That
// answer must not use up the request: the right key, answered after it, is still taken. With a
// version known here the machine refuses the stale key itself; with none known it hands both to
// the client (which checks them against the server) and settles the request once one is taken.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MEGOLM_BACKUP_V1_ALGORITHM } from "../../crypto/backup/index.ts";
import { decodeBase64, encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { KeyBackupError } from "../backup/errors.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import {
  answerSecretRequest,
  backupPublicKeyOf,
  cancellationsFromNow,
  deliverAnswerFirst,
  holdingBackupKey,
  secretRequestId,
  usingVersionWithoutKey,
  verifyEachOther,
} from "../test-support/secret-requests.ts";
import { MAX_UNCHECKED_BACKUP_KEYS } from "./gossip.ts";
import { BACKUP_SECRET } from "./names.ts";

const ALICE = "@alice:example.org";

/** OLD holds the current backup key; NEW asks for it and gets a stale key first, then the right one. */
async function staleThenRight(newKnowsVersion: boolean) {
  const hs = new FakeHomeserver();
  const old = await TestClient.create(hs, { userId: ALICE, deviceId: "OLD" });
  await old.bootstrapCrossSigning();
  const right = encodeBase64(randomBytes(32));
  const stale = encodeBase64(randomBytes(32));
  await holdingBackupKey(old, right);
  const fresh = await TestClient.create(hs, { userId: ALICE, deviceId: "NEW" });
  const version = {
    version: "7",
    algorithm: MEGOLM_BACKUP_V1_ALGORITHM,
    auth_data: { public_key: backupPublicKeyOf(right) },
  };
  if (newKnowsVersion) {
    await usingVersionWithoutKey(fresh, "7", version.auth_data.public_key);
  }
  await verifyEachOther(old, fresh);

  await fresh.machine.requestSecrets([BACKUP_SECRET]);
  await fresh.flush();
  const requestId = secretRequestId(hs, ALICE);
  await old.sync(); // answers with the right key over a new Olm session
  // A stale key for the same request over the same session, delivered before the right one.
  await deliverAnswerFirst(old, fresh, requestId, stale);
  const cancellations = cancellationsFromNow(hs, ALICE);
  const result = await fresh.sync();
  await fresh.flush();
  /** Another answer of OLD to the same request, as NEW takes it. */
  const answerResult = (secret: string) => answerSecretRequest(old, fresh, requestId, secret);
  /** The same: the secrets handed out. */
  const answer = async (secret: string): Promise<string[]> =>
    (await answerResult(secret)).secrets.map((s) => s.value);
  return { fresh, result, right, stale, version, cancellations, answer, answerResult };
}

describe("a stale backup key answered first", () => {
  it("with the version known: refused (reported without the key), and the right answer after it is taken", async () => {
    const { result, right, stale, cancellations } = await staleThenRight(true);
    assert.deepEqual(
      result.secrets.map((s) => s.value === right),
      [true],
    );
    assert.deepEqual(result.refusedSecrets, [
      { name: BACKUP_SECRET, deviceId: "OLD", reason: "not_current" },
    ]);
    assert.ok(!JSON.stringify(result.refusedSecrets).includes(stale));
    // The right answer settled the request: our other devices were told once.
    assert.equal(cancellations(), 1);
  });

  it("with no version known: both go to the client, and the request is settled only once the right key is taken", async () => {
    const { fresh, result, right, stale, version, cancellations } = await staleThenRight(false);
    assert.deepEqual(
      result.secrets.map((s) => s.value),
      [stale, right],
    );
    assert.deepEqual(result.refusedSecrets, []);
    assert.equal(cancellations(), 0, "the request stays open while no key was taken");
    // The client checks each against the server's version: the stale one is refused there...
    await assert.rejects(
      fresh.machine.backup.useVersion(version, decodeBase64(stale)),
      (e: unknown) => e instanceof KeyBackupError && e.code === "KEY_MISMATCH",
    );
    await fresh.flush();
    assert.equal(cancellations(), 0);
    // ...and the right one is used: the request is settled and our other devices told.
    await fresh.machine.backup.useVersion(version, decodeBase64(right));
    await fresh.flush();
    assert.equal(cancellations(), 1);
    const status = await fresh.machine.backup.status();
    assert.equal(status.version, "7");
    assert.equal(status.hasKey, true);
  });

  it(`with no version known: a key goes out once per request, remembered within MAX_UNCHECKED_BACKUP_KEYS (${MAX_UNCHECKED_BACKUP_KEYS})`, async () => {
    const { right, stale, answer } = await staleThenRight(false);
    assert.deepEqual(await answer(right), [], "the same key again is not handed out again");
    assert.deepEqual(await answer(stale), []);
    // A device of ours answering with ever new keys: what is remembered stays within the bound,
    // the oldest forgotten first (then handed out again, once).
    for (let i = 0; i < MAX_UNCHECKED_BACKUP_KEYS; i++) await answer(encodeBase64(randomBytes(32)));
    assert.deepEqual(await answer(stale), [stale]);
    assert.deepEqual(await answer(stale), []);
  });

  it("a malformed key is refused (reported) and the request stays open", async () => {
    const { answer, answerResult } = await staleThenRight(false);
    const result = await answerResult(encodeBase64(randomBytes(16)));
    assert.deepEqual(result.secrets, []);
    assert.deepEqual(result.refusedSecrets, [{ name: BACKUP_SECRET, deviceId: "OLD", reason: "malformed" }]);
    const other = encodeBase64(randomBytes(32));
    assert.deepEqual(await answer(other), [other]);
  });
});
