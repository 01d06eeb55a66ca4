// The legacy `m.org.matrix.custom.backup_disabled` account data (`{ "disabled": true }`), which
// Element Web wrote when the user turned key backup off and matrix-rust-sdk still reads and writes
// as the unstable name of `m.key_backup`: a user who turned backup off there gets no backup made
// and no upload from a Keyroom device. `m.key_backup` decides when it says; the legacy flag when it
// does not; content of any other shape says nothing. Keyroom writes both names when it turns backup
// on (`createVersion`) or off (`deleteVersion`).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  backupEnabledInAccountData,
  KEY_BACKUP_ACCOUNT_DATA,
  LEGACY_BACKUP_DISABLED_ACCOUNT_DATA,
} from "../../src/client/encryption/index.ts";
import type { JsonObject } from "../../src/wire/index.ts";
import {
  devServerFixture,
  fixtureDevice,
  fixtureUser,
  sharedRoom,
  syncAll,
  type TestClient,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-backup-legacy-");
const LEGACY = LEGACY_BACKUP_DISABLED_ACCOUNT_DATA;

async function token(t: TestClient): Promise<string> {
  const session = await t.client.store.loadSession();
  assert.ok(session?.accessToken);
  return session.accessToken;
}

/** Account data written as another client would (straight to the server), then seen by a sync. */
async function putElsewhere(t: TestClient, type: string, content: unknown): Promise<void> {
  const userId = encodeURIComponent(t.client.userId);
  const res = await fx.hs.api("PUT", `/user/${userId}/account_data/${encodeURIComponent(type)}`, {
    token: await token(t),
    body: content,
  });
  assert.equal(res.status, 200);
  await syncAll(t);
}

/** The server's current backup version, or undefined when it has none. */
async function serverVersion(t: TestClient): Promise<string | undefined> {
  const res = await fx.hs.api("GET", "/room_keys/version", { token: await token(t) });
  if (res.status === 404) return undefined;
  assert.equal(res.status, 200);
  return res.json.version as string;
}

async function syncAndSettle(t: TestClient): Promise<void> {
  await syncAll(t);
  await t.client.crypto.backup.idle();
}

describe("backupEnabledInAccountData", () => {
  const read = (data: Record<string, unknown>) =>
    backupEnabledInAccountData((type) => data[type] as JsonObject | undefined);

  it("m.key_backup decides when it says; else the legacy flag; any other shape says nothing", () => {
    assert.equal(read({}), undefined);
    assert.equal(read({ [LEGACY]: { disabled: true } }), false);
    assert.equal(read({ [LEGACY]: { disabled: false } }), true);
    for (const disabled of ["true", 1, null, {}, []]) {
      assert.equal(read({ [LEGACY]: { disabled } }), undefined, JSON.stringify(disabled));
    }
    assert.equal(read({ [LEGACY]: {} }), undefined);
    assert.equal(read({ [KEY_BACKUP_ACCOUNT_DATA]: { enabled: true }, [LEGACY]: { disabled: true } }), true);
    assert.equal(
      read({ [KEY_BACKUP_ACCOUNT_DATA]: { enabled: false }, [LEGACY]: { disabled: false } }),
      false,
    );
    // `{}` (deleted) or a malformed m.key_backup says nothing: the legacy flag decides.
    assert.equal(read({ [KEY_BACKUP_ACCOUNT_DATA]: {}, [LEGACY]: { disabled: true } }), false);
    assert.equal(read({ [KEY_BACKUP_ACCOUNT_DATA]: { enabled: "no" }, [LEGACY]: { disabled: true } }), false);
  });
});

describe("the legacy backup_disabled flag (devserver)", () => {
  it("turned off elsewhere: recovery sets up, changes its key, recovers and resets without making a backup", async () => {
    const alice = await fixtureUser(fx, "lg-rec");
    // Element Web turned backup off: only the legacy name, no version on the server.
    await putElsewhere(alice, LEGACY, { disabled: true });

    const { recoveryKey } = await alice.client.crypto.recovery.enable({ auth: { password: "pw" } });
    assert.equal(await serverVersion(alice), undefined, "enable made no backup");
    const s = await alice.client.crypto.backup.status();
    assert.deepEqual([s.version, s.uploading, s.enabledInAccountData], [undefined, false, false]);
    // Backup is off, so nothing about it is missing.
    assert.deepEqual(await alice.client.crypto.recovery.status(), { state: "enabled", missing: [] });
    assert.deepEqual(await alice.client.crypto.recovery.status({ recoveryKey }), {
      state: "enabled",
      missing: [],
    });
    // The user's choice is left as it is.
    assert.equal(alice.client.getAccountData(KEY_BACKUP_ACCOUNT_DATA), undefined);
    assert.deepEqual(alice.client.getAccountData(LEGACY), { disabled: true });

    const changed = await alice.client.crypto.recovery.changeRecoveryKey();
    assert.equal(await serverVersion(alice), undefined, "changeRecoveryKey made no backup");

    const fresh = await fixtureDevice(fx, alice, "new");
    await syncAll(fresh);
    const recovered = await fresh.client.crypto.recovery.recover({ recoveryKey: changed.recoveryKey });
    assert.equal(recovered.crossSigned, true);
    assert.equal(recovered.backupVersion, undefined);
    assert.deepEqual(recovered.repaired, []);
    assert.equal(await serverVersion(alice), undefined, "recover made no backup");

    await fresh.client.crypto.recovery.resetIdentity({ auth: { password: "pw" } });
    assert.equal(await serverVersion(fresh), undefined, "resetIdentity made no backup");
    assert.deepEqual(await fresh.client.crypto.recovery.status(), { state: "enabled", missing: [] });

    // Turning backup on is the app's explicit call: both names say so afterwards.
    const created = await fresh.client.crypto.backup.createVersion();
    assert.equal(await serverVersion(fresh), created.version);
    assert.deepEqual(fresh.client.getAccountData(KEY_BACKUP_ACCOUNT_DATA), { enabled: true });
    assert.deepEqual(fresh.client.getAccountData(LEGACY), { disabled: false });
    assert.equal((await fresh.client.crypto.backup.status()).uploading, true);
    // And off again: both names, so a client reading only the legacy one makes no backup either.
    await fresh.client.crypto.backup.deleteVersion();
    assert.deepEqual(fresh.client.getAccountData(KEY_BACKUP_ACCOUNT_DATA), { enabled: false });
    assert.deepEqual(fresh.client.getAccountData(LEGACY), { disabled: true });
  });

  it("with a version in use, the legacy flag alone stops uploads; m.key_backup wins over it; a malformed flag says nothing", async () => {
    const alice = await fixtureUser(fx, "lg-up");
    const bob = await fixtureUser(fx, "lg-up-bob");
    const roomId = await sharedRoom(bob, [alice]);
    await bob.client.sendText(roomId, "one");
    await syncAll(alice);
    await alice.client.crypto.backup.createVersion();
    await alice.client.crypto.backup.idle();
    const first = await alice.client.crypto.backup.status();
    assert.equal(first.backedUp, first.total);

    // m.key_backup deleted (`{}`) and the legacy flag set, as a client knowing only it does.
    await putElsewhere(alice, KEY_BACKUP_ACCOUNT_DATA, {});
    await putElsewhere(alice, LEGACY, { disabled: true });
    /** Bob sends in a new Megolm session: one more room key for alice to back up. */
    const newSession = async (body: string) => {
      await bob.client.crypto.machine.discardRoomKey(roomId);
      await bob.client.sendText(roomId, body);
      await syncAndSettle(alice);
      return alice.client.crypto.backup.status();
    };
    const off = await newSession("two");
    assert.deepEqual([off.uploading, off.enabledInAccountData], [false, false]);
    assert.equal(off.backedUp, off.total - 1, "nothing uploaded while the legacy flag says off");
    assert.equal(await alice.client.crypto.backup.uploadPending(), 0);

    // A flag that is not a boolean says nothing: this device's own choice stands, uploads resume.
    await putElsewhere(alice, LEGACY, { disabled: "true" });
    await alice.client.crypto.backup.idle();
    await syncAndSettle(alice);
    const malformed = await alice.client.crypto.backup.status();
    assert.deepEqual([malformed.uploading, malformed.enabledInAccountData], [true, undefined]);
    assert.equal(malformed.backedUp, malformed.total);

    // m.key_backup saying on wins over the legacy flag saying off.
    await putElsewhere(alice, LEGACY, { disabled: true });
    await putElsewhere(alice, KEY_BACKUP_ACCOUNT_DATA, { enabled: true });
    const on = await newSession("three");
    assert.deepEqual([on.uploading, on.enabledInAccountData], [true, true]);
    assert.equal(on.backedUp, on.total);
  });
});
