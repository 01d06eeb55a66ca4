// Secret sharing between two machines of the same user against the fake homeserver: who is
// answered, what is accepted, and what the new device does with the secrets.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { PkDecryption } from "../../crypto/pk/index.ts";
import { emptyChanges } from "../machine-context.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { holdingBackupKey } from "../test-support/secret-requests.ts";
import { BACKUP_SECRET } from "./names.ts";

const ALICE = "@alice:example.org";

async function pair(): Promise<{
  hs: FakeHomeserver;
  old: TestClient;
  fresh: TestClient;
  backupKey: string;
}> {
  const hs = new FakeHomeserver();
  const old = await TestClient.create(hs, { userId: ALICE, deviceId: "OLD" });
  await old.bootstrapCrossSigning();
  const backupKey = await holdingBackupKey(old);
  const fresh = await TestClient.create(hs, { userId: ALICE, deviceId: "NEW" });
  for (const c of [old, fresh]) {
    await c.machine.receiveKeysChanges([ALICE], []);
    await c.flush();
  }
  return { hs, old, fresh, backupKey };
}

/** Both devices verify each other (as a finished SAS would leave them). */
async function verifyEachOther(old: TestClient, fresh: TestClient): Promise<void> {
  await old.machine.markDeviceVerified(ALICE, "NEW");
  await fresh.machine.markDeviceVerified(ALICE, "OLD");
  await old.flush();
  await fresh.flush();
}

const secretSends = (hs: FakeHomeserver) => hs.sentToDevice.filter((m) => m.eventType === "m.room.encrypted");

describe("secret sharing (machine)", () => {
  it("a verified new device asks, the old device answers over Olm; keys are imported and the device signed", async () => {
    const { hs, old, fresh, backupKey } = await pair();
    await verifyEachOther(old, fresh);
    let status = await fresh.machine.crossSigningStatus();
    assert.equal(status.privateKeys.selfSigning, false);

    const asked = await fresh.machine.requestSecrets();
    assert.deepEqual(asked.sort(), [
      "m.cross_signing.master",
      "m.cross_signing.self_signing",
      "m.cross_signing.user_signing",
      BACKUP_SECRET,
    ]);
    // Asking again while the requests are out sends nothing new.
    assert.deepEqual(await fresh.machine.requestSecrets(), []);
    await fresh.flush();
    const requests = hs.sentToDevice.filter((m) => m.eventType === "m.secret.request" && m.from === ALICE);
    assert.equal(requests.filter((r) => r.to === `${ALICE}|OLD`).length, 4);

    await old.sync(); // answers: claims a one-time key of NEW, then sends four m.secret.send over Olm
    assert.ok(secretSends(hs).length >= 4);
    for (const m of hs.sentToDevice) assert.ok(!JSON.stringify(m.content).includes(backupKey));

    const result = await fresh.sync();
    assert.deepEqual(
      result.secrets.map((s) => s.name),
      [BACKUP_SECRET],
    );
    assert.equal(result.secrets[0]?.value, backupKey);
    assert.equal(JSON.stringify(result.secrets[0]), JSON.stringify({ name: BACKUP_SECRET }));
    // The secret never reaches the application's to-device events.
    const sends = result.toDevice.filter((e) => e.type === "m.secret.send");
    assert.equal(sends.length, 4);
    for (const e of sends) assert.equal(e.content.secret, undefined);

    status = await fresh.machine.crossSigningStatus();
    assert.deepEqual(status.privateKeys, { master: true, selfSigning: true, userSigning: true });
    assert.equal(status.verified, true);
    await fresh.flush(); // the query that follows signs this device
    status = await fresh.machine.crossSigningStatus();
    assert.equal(status.deviceCrossSigned, true);
    // Cancellations went to the other devices.
    assert.ok(
      hs.sentToDevice.some(
        (m) =>
          m.eventType === "m.secret.request" &&
          m.from === ALICE &&
          (m.content as { action?: string }).action === "request_cancellation",
      ),
    );
  });

  it("a backup key that is not the key of the version in use is neither given away nor counted as held", async () => {
    const { hs, old, fresh } = await pair();
    // The backup was replaced elsewhere: the old device uses the new version without its key, and
    // still keeps the previous version's key.
    const current = PkDecryption.create().publicKey;
    await old.store.saveChanges({
      ...emptyChanges(),
      backupState: {
        version: "2",
        algorithm: "m.megolm_backup.v1.curve25519-aes-sha2",
        authData: { public_key: current },
        trusted: true,
      },
    });
    await old.restart();
    await verifyEachOther(old, fresh);
    // The old device asks our other devices for the key it lacks.
    assert.ok((await old.machine.requestSecrets()).includes(BACKUP_SECRET));
    await fresh.machine.requestSecrets([BACKUP_SECRET]);
    await fresh.flush();
    await old.sync();
    // The stale key was not sent: a device holding the current one can still answer.
    assert.equal(secretSends(hs).length, 0);
    assert.deepEqual((await fresh.sync()).secrets, []);
  });

  it("a request of an unverified own device is held until it is verified", async () => {
    const { hs, old, fresh } = await pair();
    await fresh.machine.requestSecrets(["m.cross_signing.self_signing"]);
    await fresh.flush();
    await old.sync();
    assert.equal(secretSends(hs).length, 0);
    await old.machine.markDeviceVerified(ALICE, "NEW");
    await old.flush();
    assert.equal(secretSends(hs).length, 1);
    // The new device has not verified the old one: the answer is refused.
    await fresh.sync();
    assert.equal((await fresh.machine.crossSigningStatus()).privateKeys.selfSigning, false);
  });

  it("refused: another user's request, an answer we did not ask for, and one sent in the clear", async () => {
    const { hs, old, fresh } = await pair();
    await verifyEachOther(old, fresh);
    // Mallory asks Alice's old device.
    const mallory = await TestClient.create(hs, { userId: "@mallory:example.org", deviceId: "M" });
    hs.device(ALICE, "OLD").inbox.push({
      type: "m.secret.request",
      sender: mallory.userId,
      content: {
        action: "request",
        name: "m.cross_signing.master",
        requesting_device_id: "M",
        request_id: "r1",
      },
    });
    // Answers in the clear: one for a request the new device never made, one for a real request.
    const ssk = (await old.machine.exportCrossSigningKeys()).selfSigning as string;
    await fresh.machine.requestSecrets(["m.cross_signing.self_signing"]);
    await fresh.flush();
    const real = hs.sentToDevice.find((m) => m.eventType === "m.secret.request" && m.from === ALICE);
    const requestId = (real?.content as { request_id?: string } | undefined)?.request_id;
    assert.ok(requestId);
    hs.device(ALICE, "NEW").inbox.push(
      { type: "m.secret.send", sender: ALICE, content: { request_id: "nope", secret: ssk } },
      { type: "m.secret.send", sender: ALICE, content: { request_id: requestId, secret: ssk } },
    );
    const result = await fresh.sync();
    assert.equal(result.secrets.length, 0);
    assert.equal((await fresh.machine.crossSigningStatus()).privateKeys.selfSigning, false);
    await old.sync();
    assert.equal(secretSends(hs).filter((m) => m.to.startsWith("@mallory")).length, 0);
    const answered = secretSends(hs).length;
    // Malformed requests do nothing.
    hs.device(ALICE, "OLD").inbox.push(
      { type: "m.secret.request", sender: ALICE, content: { action: "request" } },
      { type: "m.secret.request", sender: ALICE, content: "junk" as unknown as Record<string, unknown> },
    );
    await old.sync();
    assert.equal(secretSends(hs).length, answered);
  });

  it("hostile requests and sends (any JSON, any sender) never throw and are never answered", async () => {
    const { hs, old, fresh } = await pair();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(ALICE, "@mallory:example.org"),
        fc.constantFrom("m.secret.request", "m.secret.send"),
        fc.oneof(
          fc.jsonValue(),
          fc.record({
            action: fc.constantFrom("request", "request_cancellation", "x"),
            name: fc.constantFrom("m.cross_signing.master", BACKUP_SECRET, "", "other"),
            requesting_device_id: fc.constantFrom("NEW", "OLD", "", "X"),
            request_id: fc.string({ maxLength: 8 }),
            secret: fc.string({ maxLength: 8 }),
          }),
        ),
        async (sender, type, content) => {
          hs.device(ALICE, "OLD").inbox.push({ type, sender, content: content as Record<string, unknown> });
          await old.sync();
        },
      ),
      { numRuns: 60 },
    );
    // Nobody was verified: nothing was sent over Olm, and no secret was taken.
    assert.equal(secretSends(hs).length, 0);
    assert.equal((await fresh.machine.crossSigningStatus()).privateKeys.master, false);
  });
});
