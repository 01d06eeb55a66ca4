// Secret sharing's remaining edges against the fake homeserver: a held request is answered only
// once its device is verified (not on any other trust change), a stale key this device holds is
// never given away, a cross-signing key that is not our published one is refused, and a request
// is answered into our store at most once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { CrossSigningError } from "../cross-signing/errors.ts";
import { SECRET_NAME } from "../cross-signing/private-keys.ts";
import { emptyChanges } from "../machine-context.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { MAX_HELD_SECRET_REQUESTS } from "./gossip.ts";
import { BACKUP_SECRET } from "./names.ts";

const ALICE = "@alice:example.org";
const seed = (): string => encodeBase64(randomBytes(32));

/** OLD holds our identity (and `secrets`, stored before its restart); NEW is a fresh device. */
async function pair(secrets: Record<string, string> = {}): Promise<{
  hs: FakeHomeserver;
  old: TestClient;
  fresh: TestClient;
}> {
  const hs = new FakeHomeserver();
  const old = await TestClient.create(hs, { userId: ALICE, deviceId: "OLD" });
  await old.bootstrapCrossSigning();
  await old.store.saveChanges({ ...emptyChanges(), secrets });
  await old.restart();
  const fresh = await TestClient.create(hs, { userId: ALICE, deviceId: "NEW" });
  for (const c of [old, fresh]) {
    await c.machine.receiveKeysChanges([ALICE], []);
    await c.flush();
  }
  return { hs, old, fresh };
}

const secretSends = (hs: FakeHomeserver) => hs.sentToDevice.filter((m) => m.eventType === "m.room.encrypted");

describe("secret sharing: hostile and stale cases", () => {
  it("a held request is answered when its device is verified, not when it is ignored or blacklisted", async () => {
    const { hs, old, fresh } = await pair();
    await fresh.machine.requestSecrets([SECRET_NAME.self_signing]);
    await fresh.flush();
    await old.sync();
    for (const trust of ["ignored", "unset"] as const) {
      await old.machine.setDeviceTrust(ALICE, "NEW", trust);
      await old.flush();
      assert.equal(secretSends(hs).length, 0, trust);
    }
    await old.machine.setDeviceTrust(ALICE, "NEW", "verified");
    await old.flush();
    assert.equal(secretSends(hs).length, 1);

    // A blacklisted device's held request is dropped: verifying it later answers nothing.
    const other = await pair();
    await other.fresh.machine.requestSecrets([SECRET_NAME.self_signing]);
    await other.fresh.flush();
    await other.old.sync();
    await other.old.machine.setDeviceTrust(ALICE, "NEW", "blacklisted");
    await other.old.flush();
    assert.equal(secretSends(other.hs).length, 0);
    await other.old.machine.setDeviceTrust(ALICE, "NEW", "verified");
    await other.old.flush();
    assert.equal(secretSends(other.hs).length, 0);
  });

  it(`requests held for an unverified own device are bounded (MAX_HELD_SECRET_REQUESTS, ${MAX_HELD_SECRET_REQUESTS})`, async () => {
    const { hs, old } = await pair();
    for (let i = 0; i < MAX_HELD_SECRET_REQUESTS + 5; i++) {
      hs.device(ALICE, "OLD").inbox.push({
        type: "m.secret.request",
        sender: ALICE,
        content: {
          action: "request",
          name: SECRET_NAME.self_signing,
          requesting_device_id: "NEW",
          request_id: `r${i}`,
        },
      });
    }
    await old.sync();
    assert.equal(secretSends(hs).length, 0);
    await old.machine.setDeviceTrust(ALICE, "NEW", "verified");
    await old.flush();
    assert.equal(secretSends(hs).length, MAX_HELD_SECRET_REQUESTS);
  });

  it("a cross-signing key this device holds that is not the published one is never sent", async () => {
    const { hs, old, fresh } = await pair({ [SECRET_NAME.self_signing]: seed() });
    assert.equal((await old.machine.crossSigningStatus()).privateKeys.selfSigning, false);
    await old.machine.markDeviceVerified(ALICE, "NEW");
    await fresh.machine.markDeviceVerified(ALICE, "OLD");
    await old.flush();
    await fresh.machine.requestSecrets([SECRET_NAME.self_signing]);
    await fresh.flush();
    await old.sync();
    assert.equal(secretSends(hs).length, 0);
  });

  it("a cross-signing key that is not our published key is refused (KEY_MISMATCH) and not stored", async () => {
    const { fresh } = await pair();
    for (const keys of [{ selfSigning: seed() }, { master: seed() }, { userSigning: seed() }]) {
      await assert.rejects(
        fresh.machine.importCrossSigningKeys(keys),
        (e: unknown) => e instanceof CrossSigningError && e.code === "KEY_MISMATCH",
      );
    }
    await fresh.restart();
    const status = await fresh.machine.crossSigningStatus();
    assert.deepEqual(status.privateKeys, { master: false, selfSigning: false, userSigning: false });
    assert.equal(status.verified, false);
  });

  it("a request is answered into our hands once: a second answer to it is refused", async () => {
    const backupKey = seed();
    const { hs, old, fresh } = await pair({ [BACKUP_SECRET]: backupKey });
    await old.machine.markDeviceVerified(ALICE, "NEW");
    await fresh.machine.markDeviceVerified(ALICE, "OLD");
    await old.flush();
    await fresh.machine.requestSecrets([BACKUP_SECRET]);
    await fresh.flush();
    const request = hs.sentToDevice.find(
      (m) => m.eventType === "m.secret.request" && m.to === `${ALICE}|OLD`,
    );
    assert.ok(request);
    await old.sync();
    // The same request again (replayed by the server): OLD answers it a second time.
    hs.device(ALICE, "OLD").inbox.push({ type: request.eventType, sender: ALICE, content: request.content });
    await old.sync();
    assert.equal(secretSends(hs).filter((m) => m.to === `${ALICE}|NEW`).length, 2);
    const result = await fresh.sync();
    assert.deepEqual(
      result.secrets.map((s) => [s.name, s.value === backupKey]),
      [[BACKUP_SECRET, true]],
    );
  });
});
