import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { verifySignedJson } from "../../crypto/json/index.ts";
import { PkDecryption } from "../../crypto/pk/index.ts";
import { decodeBase64 } from "../../crypto/primitives/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { DecryptionError } from "../errors.ts";
import { OlmMachine } from "../machine.ts";
import { IMPORT_BATCH_SIZE } from "../room-keys/import.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { KeyBackupError } from "./errors.ts";
import { BACKUP_UPLOAD_BATCH_SIZE } from "./key-backup.ts";
import type { BackupUploadRequest } from "./requests.ts";
import { type BackupRecordsDecryptor, RESTORE_DECRYPT_CHUNK } from "./restore.ts";

const ROOM = "!room:example.org";

interface JsSdkVectors {
  jssdk_backup: {
    private_key_base64: string;
    key_backup_data: unknown;
    session: { sender_key: string; session_id: string; session_key_at_0: string };
    signed_backup_info: Record<string, unknown> & { auth_data: Record<string, unknown> };
    device: { user_id: string; device_id: string; ed25519: string };
  };
}
const vectors = JSON.parse(
  readFileSync(new URL("../../../test/vectors/secret-storage/published.json", import.meta.url), "utf8"),
) as JsSdkVectors;
const js = vectors.jssdk_backup;

/** A backup server in memory: versions and the records uploaded to the current one. */
class BackupServer {
  version = 0;
  authData: Record<string, unknown> = {};
  readonly keys = new Map<string, unknown>();
  uploads = 0;

  create(body: { auth_data: Readonly<Record<string, unknown>> }): { version: string } {
    this.version++;
    this.authData = { ...body.auth_data };
    this.keys.clear();
    return { version: String(this.version) };
  }

  current(): Record<string, unknown> {
    return {
      version: String(this.version),
      algorithm: "m.megolm_backup.v1.curve25519-aes-sha2",
      auth_data: this.authData,
    };
  }

  /** Stores the batch, or answers with the Matrix error a real server gives for another version. */
  upload(request: BackupUploadRequest): string | undefined {
    if (request.version !== String(this.version)) return "M_WRONG_ROOM_KEYS_VERSION";
    for (const [roomId, room] of Object.entries(request.body.rooms)) {
      for (const [sessionId, data] of Object.entries(room.sessions)) {
        this.uploads++;
        this.keys.set(`${roomId}|${sessionId}`, data);
      }
    }
    return undefined;
  }

  all(): { rooms: Record<string, { sessions: Record<string, unknown> }> } {
    const rooms: Record<string, { sessions: Record<string, unknown> }> = {};
    for (const [k, data] of this.keys) {
      const [roomId, sessionId] = k.split("|") as [string, string];
      rooms[roomId] ??= { sessions: {} };
      rooms[roomId].sessions[sessionId] = data;
    }
    return { rooms };
  }
}

/** Uploads every pending batch; returns the number of requests. */
async function uploadAll(machine: OlmMachine, server: BackupServer): Promise<number> {
  let requests = 0;
  for (;;) {
    const request = await machine.backup.nextUpload();
    if (request === undefined) return requests;
    requests++;
    assert.ok(
      Object.values(request.body.rooms).reduce((n, r) => n + Object.keys(r.sessions).length, 0) <=
        BACKUP_UPLOAD_BATCH_SIZE,
    );
    const error = server.upload(request);
    if (error !== undefined) {
      await machine.backup.uploadFailed(request.id, error);
      return requests;
    }
    await machine.backup.uploaded(request.id);
  }
}

async function createVersion(machine: OlmMachine, server: BackupServer): Promise<Uint8Array> {
  const { request, privateKey } = await machine.backup.prepareVersion();
  await machine.backup.versionCreated(request.id, server.create(request.body));
  return privateKey;
}

async function machineFor(userId: string, deviceId: string): Promise<OlmMachine> {
  const store = await MemoryCryptoStore.open({ userId, deviceId });
  return OlmMachine.open({ userId, deviceId, store });
}

/** Room keys for `count` fresh sessions, as export entries (they are imported, not backed up). */
async function withSessions(machine: OlmMachine, other: OlmMachine, count: number): Promise<void> {
  const { OutboundGroupSession } = await import("../../crypto/megolm/index.ts");
  const { InboundGroupSession } = await import("../../crypto/megolm/index.ts");
  const keys = [];
  for (let i = 0; i < count; i++) {
    const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
    keys.push({
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: `!r${i % 7}:example.org`,
      sender_key: other.identityKeys.curve25519,
      session_id: session.sessionId,
      session_key: session.exportAtFirstKnownIndex(),
      sender_claimed_keys: { ed25519: other.identityKeys.ed25519 },
      forwarding_curve25519_key_chain: [],
    });
  }
  await machine.importRoomKeys(keys);
}

describe("key backup in the machine", () => {
  it("restores matrix-js-sdk's published backup record (known answer) and marks nothing it does not upload to", async () => {
    const machine = await machineFor("@alice:localhost", "NEWDEVICE");
    const roomId = "!room:localhost";
    const body = { rooms: { [roomId]: { sessions: { [js.session.session_id]: js.key_backup_data } } } };
    const privateKey = decodeBase64(js.private_key_base64);
    const progress: [number, number][] = [];
    const result = await machine.backup.restore(body, {
      version: "1",
      privateKey,
      onProgress: (d, t) => progress.push([d, t]),
    });
    assert.deepEqual([result.imported, result.total, result.failed], [1, 1, 0]);
    assert.deepEqual(progress, [[1, 1]]);
    const [key] = await machine.exportRoomKeys([roomId]);
    // The record holds the session from index 0 (its first_message_index field says 1).
    assert.equal(key?.session_key, js.session.session_key_at_0);
    assert.equal(key?.sender_key, js.session.sender_key);
    // A wrong key decrypts nothing, and says so in `failed`.
    const wrong = await machine.backup.restore(body, {
      version: "1",
      privateKey: PkDecryption.create().exportPrivateKey(),
    });
    assert.deepEqual([wrong.imported, wrong.failed], [0, 1]);
    // No version is in use here: the restored key is not marked.
    assert.equal((await machine.backup.status()).backedUp, 0);
  });

  it("a restore of more than one step through a decryptor imports what it imports alone, and decrypts a failed chunk itself", async () => {
    const { encryptKeyBackupData } = await import("../../crypto/backup/index.ts");
    const { InboundGroupSession, OutboundGroupSession } = await import("../../crypto/megolm/index.ts");
    const { PkEncryption } = await import("../../crypto/pk/index.ts");
    const backupKey = PkDecryption.create();
    const encryption = new PkEncryption(backupKey.publicKey);
    const otherKey = new PkEncryption(PkDecryption.create().publicKey);
    const sender = (await machineFor("@bob:example.org", "BOB1")).identityKeys;
    const count = IMPORT_BATCH_SIZE + RESTORE_DECRYPT_CHUNK + 7;
    const rooms: Record<string, { sessions: Record<string, unknown> }> = {};
    for (let i = 0; i < count; i++) {
      const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
      const room = `!r${i % 5}:example.org`;
      rooms[room] ??= { sessions: {} };
      const key = {
        algorithm: "m.megolm.v1.aes-sha2",
        sender_key: sender.curve25519,
        session_key: session.exportAtFirstKnownIndex(),
        sender_claimed_keys: { ed25519: sender.ed25519 },
        forwarding_curve25519_key_chain: [],
      };
      const meta = { firstMessageIndex: 0, forwardedCount: 0, isVerified: false };
      // Three records that must fail: another backup's, a malformed one, one whose plaintext is no room key.
      rooms[room].sessions[session.sessionId] =
        i === 3
          ? encryptKeyBackupData(otherKey, key, meta)
          : i === 4
            ? { session_data: "not an object" }
            : i === 5
              ? { session_data: encryption.encrypt('{"algorithm":1}') }
              : encryptKeyBackupData(encryption, key, meta);
    }
    const body = { rooms };
    const privateKey = backupKey.exportPrivateKey();
    const alone = await (await machineFor("@alice:example.org", "A1")).backup.restore(body, {
      version: "1",
      privateKey,
    });
    // Elsewhere: the same code on this thread, one chunk a call; its second call fails.
    const calls: number[] = [];
    const decryptor: BackupRecordsDecryptor = async (key, data) => {
      calls.push(data.length);
      if (calls.length === 2) throw new Error("the worker ended");
      const decryption = PkDecryption.fromPrivateKey(key);
      return data.map((d) => {
        try {
          return decryption.decryptString(d);
        } catch {
          return undefined;
        }
      });
    };
    const machine = await machineFor("@alice:example.org", "A2");
    const through = await machine.backup.restore(body, { version: "1", privateKey, decryptor });
    assert.deepEqual([alone.imported, alone.total, alone.failed], [count - 3, count, 3]);
    assert.deepEqual([through.imported, through.total, through.failed], [alone.imported, count, 3]);
    // Every chunk went out (the malformed record did not), one chunk per call.
    assert.equal(calls.length, Math.ceil(count / RESTORE_DECRYPT_CHUNK));
    assert.equal(
      calls.reduce((a, b) => a + b, 0),
      count - 1,
    );
    assert.equal((await machine.exportRoomKeys()).length, count - 3);
    // One step's answer is decrypted here: the decryptor is not asked.
    const one = {
      rooms: {
        [ROOM]: {
          sessions: Object.fromEntries(Object.entries(rooms["!r0:example.org"]?.sessions ?? {}).slice(0, 10)),
        },
      },
    };
    calls.length = 0;
    await (await machineFor("@alice:example.org", "A3")).backup.restore(one, {
      version: "1",
      privateKey,
      decryptor,
    });
    assert.equal(calls.length, 0);
  });

  it("a restore from the version in use marks what it wrote and what it kept: nothing goes up again", async () => {
    const alice = await machineFor("@alice:example.org", "ALICE1");
    const other = await machineFor("@bob:example.org", "BOB1");
    await withSessions(alice, other, 20);
    const server = new BackupServer();
    const key = await createVersion(alice, server);
    await uploadAll(alice, server);
    const alice2 = await machineFor("@alice:example.org", "ALICE2");
    await alice2.backup.useVersion(server.current(), key);
    // One session already held (not backed up here): the restore keeps our copy and marks it.
    const [held] = await alice.exportRoomKeys();
    assert.ok(held);
    await alice2.importRoomKeys([held]);
    assert.equal((await alice2.backup.status()).backedUp, 0);
    const result = await alice2.backup.restore(server.all(), { version: String(server.version) });
    assert.deepEqual([result.imported, result.total, result.failed], [19, 20, 0]);
    assert.deepEqual(
      [(await alice2.backup.status()).backedUp, (await alice2.backup.status()).total],
      [20, 20],
    );
    assert.equal(await alice2.backup.nextUpload(), undefined);
  });

  it("trusts js-sdk's version signed by a verified own device; a forged signature is never trusted", async () => {
    const { user_id: userId, device_id: deviceId, ed25519 } = js.device;
    const store = await MemoryCryptoStore.open({ userId, deviceId: "NEWDEVICE" });
    const keys = {
      user_id: userId,
      device_id: deviceId,
      algorithms: ["m.megolm.v1.aes-sha2"],
      keys: { [`ed25519:${deviceId}`]: ed25519, [`curve25519:${deviceId}`]: "Y3VydmU" },
    };
    await store.saveChanges({
      devices: [
        {
          userId,
          deviceId,
          keys,
          curve25519Key: "Y3VydmU",
          ed25519Key: ed25519,
          trust: "unset",
          deleted: false,
        },
      ],
    });
    const machine = await OlmMachine.open({ userId, deviceId: "NEWDEVICE", store });
    const privateKey = decodeBase64(js.private_key_base64);
    // Nothing held: another device's version is not adopted.
    assert.deepEqual(await machine.backup.checkVersion(js.signed_backup_info), { kind: "none" });
    await assert.rejects(
      machine.backup.useVersion(js.signed_backup_info, PkDecryption.create().exportPrivateKey()),
      (e) => e instanceof KeyBackupError && e.code === "KEY_MISMATCH",
    );
    // Signed by a device we have not verified: trusted only because we hold its key.
    const byKey = await machine.backup.useVersion(js.signed_backup_info, privateKey);
    assert.deepEqual(byKey, { trusted: true, by: "private_key", forged: false });
    await machine.setDeviceTrust(userId, deviceId, "verified");
    const check = await machine.backup.checkVersion(js.signed_backup_info);
    assert.deepEqual(check, { kind: "same", trust: { trusted: true, by: "verified_device", forged: false } });

    // The same auth_data with its signature altered: a forgery, not trusted even with the key.
    const signature = (js.signed_backup_info.auth_data.signatures as Record<string, Record<string, string>>)[
      userId
    ]?.[`ed25519:${deviceId}`] as string;
    const forged = structuredClone(js.signed_backup_info);
    (forged.auth_data.signatures as Record<string, Record<string, string>>)[userId] = {
      [`ed25519:${deviceId}`]: `${signature.slice(0, 10)}${signature[10] === "A" ? "B" : "A"}${signature.slice(11)}`,
    };
    const trust = await machine.backup.useVersion(forged, privateKey);
    assert.deepEqual(trust, { trusted: false, forged: true });
    const status = await machine.backup.status();
    assert.equal(status.trusted, false);
    assert.equal(status.uploading, false);
  });

  it("creates a version signed by the device and the master key; uploads in batches, once, across a restart", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:example.org", deviceId: "ALICE1" });
    await alice.bootstrapCrossSigning();
    const other = await machineFor("@bob:example.org", "BOB1");
    const count = BACKUP_UPLOAD_BATCH_SIZE + 50;
    await withSessions(alice.machine, other, count);
    const server = new BackupServer();
    await createVersion(alice.machine, server);
    const signatures = server.authData.signatures as Record<string, Record<string, string>>;
    const master = (await alice.machine.crossSigningStatus()).masterKey;
    assert.deepEqual(
      Object.keys(signatures["@alice:example.org"] ?? {}).sort(),
      ["ed25519:ALICE1", `ed25519:${master}`].sort(),
    );

    assert.equal(await uploadAll(alice.machine, server), 2);
    assert.equal(server.uploads, count);
    const status = await alice.machine.backup.status();
    assert.deepEqual([status.backedUp, status.total, status.trustedBy], [count, count, "this_device"]);
    await alice.restart();
    assert.equal(await alice.machine.backup.nextUpload(), undefined);
    assert.equal((await alice.machine.backup.checkVersion(server.current())).kind, "same");
    assert.ok(master !== undefined);
    assert.ok(verifySignedJson(server.authData, alice.userId, `ed25519:${master}`, master));
    assert.ok(
      verifySignedJson(server.authData, alice.userId, "ed25519:ALICE1", alice.machine.identityKeys.ed25519),
    );
    // A new session goes up alone.
    await withSessions(alice.machine, other, 1);
    assert.equal(await uploadAll(alice.machine, server), 1);
    assert.equal(server.uploads, count + 1);
  });

  it("another own device trusting our master key adopts the account's version and uploads without its key, and follows its replacement", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:example.org", deviceId: "ALICE1" });
    await alice.bootstrapCrossSigning();
    const server = new BackupServer();
    await createVersion(alice.machine, server);
    const other = await machineFor("@bob:example.org", "BOB1");

    const alice2 = await TestClient.create(hs, { userId: alice.userId, deviceId: "ALICE2" });
    await withSessions(alice2.machine, other, 3);
    // Before it trusts anything: not adopted.
    assert.deepEqual(await alice2.machine.backup.checkVersion(server.current()), { kind: "none" });
    await alice2.machine.receiveKeysChanges([alice.userId], []);
    await alice2.flush();
    const { master } = await alice.machine.exportCrossSigningKeys();
    await alice2.machine.importCrossSigningKeys({ ...(master !== undefined ? { master } : {}) });
    const check = await alice2.machine.backup.checkVersion(server.current());
    assert.equal(check.kind, "adopted");
    assert.ok(check.kind === "adopted" && ["verified_device", "master_key"].includes(check.trust.by ?? ""));
    const status = await alice2.machine.backup.status();
    assert.deepEqual([status.trusted, status.hasKey, status.uploading], [true, false, true]);
    assert.equal(await uploadAll(alice2.machine, server), 1);
    assert.equal(server.uploads, 3);
    // Reading needs the key: no lookups without it.
    assert.deepEqual(await alice2.machine.backup.lookupRequests(), []);

    // Alice replaces the version (a new key, signed by her master key), as a reset in Element
    // does: alice2's next batch is refused, and the check that follows switches it to the new
    // version (as js-sdk does), where every key goes up again.
    await createVersion(alice.machine, server);
    await withSessions(alice2.machine, other, 1);
    assert.equal(await uploadAll(alice2.machine, server), 1);
    assert.equal((await alice2.machine.backup.status()).stopped, "version_changed");
    const switched = await alice2.machine.backup.checkVersion(server.current());
    assert.equal(switched.kind, "adopted");
    const now = await alice2.machine.backup.status();
    assert.deepEqual(
      [now.version, now.stopped, now.uploading, now.hasKey, now.backedUp],
      [String(server.version), undefined, true, false, 0],
    );
    assert.equal(await uploadAll(alice2.machine, server), 1);
    assert.equal(server.keys.size, 4, "every key of alice2's in the new version");
  });

  it("a replacement signed by no one we trust stops uploads; one our master key signed is switched to", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:example.org", deviceId: "ALICE1" });
    await alice.bootstrapCrossSigning();
    const other = await machineFor("@bob:example.org", "BOB1");
    await withSessions(alice.machine, other, 2);
    const server = new BackupServer();
    await createVersion(alice.machine, server);
    assert.equal(await uploadAll(alice.machine, server), 1);
    // A version no device of ours signed: not ours to upload to.
    server.create({ auth_data: { public_key: PkDecryption.create().publicKey } });
    assert.deepEqual(await alice.machine.backup.checkVersion(server.current()), {
      kind: "stopped",
      reason: "version_changed",
      changed: true,
    });
    // Then one signed by alice's master key (made by another of her devices, with another key).
    const alice3 = await TestClient.create(hs, { userId: alice.userId, deviceId: "ALICE3" });
    await alice3.machine.importCrossSigningKeys(await alice.machine.exportCrossSigningKeys());
    await createVersion(alice3.machine, server);
    const check = await alice.machine.backup.checkVersion(server.current());
    assert.ok(check.kind === "adopted" && check.trust.by === "master_key", JSON.stringify(check));
    assert.equal(await uploadAll(alice.machine, server), 1);
    assert.equal(server.keys.size, 2);
  });

  it("a version signed only by an own device we blacklisted is not trusted, cross-signed or not", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:example.org", deviceId: "ALICE1" });
    await alice.bootstrapCrossSigning();
    const other = await machineFor("@bob:example.org", "BOB1");
    await withSessions(alice.machine, other, 2);
    const server = new BackupServer();
    await createVersion(alice.machine, server);
    assert.equal(await uploadAll(alice.machine, server), 1);
    // A second device, cross-signed by alice, then blacklisted by her (lost, or stolen).
    const stolen = await TestClient.create(hs, { userId: alice.userId, deviceId: "ALICE2" });
    await alice.machine.receiveKeysChanges([alice.userId], []);
    await alice.flush();
    await alice.machine.markDeviceVerified(alice.userId, "ALICE2");
    await alice.flush();
    await alice.machine.receiveKeysChanges([alice.userId], []);
    await alice.flush();
    const devices = await alice.machine.getUserDevices(alice.userId);
    assert.equal(devices.find((d) => d.deviceId === "ALICE2")?.crossSigned, true);
    await alice.machine.setDeviceTrust(alice.userId, "ALICE2", "blacklisted");
    // It replaces the backup with a key of its own, signed by its device key alone.
    await createVersion(stolen.machine, server);
    const check = await alice.machine.backup.checkVersion(server.current());
    assert.deepEqual(check, { kind: "stopped", reason: "version_changed", changed: true });
    await withSessions(alice.machine, other, 1);
    assert.equal(await uploadAll(alice.machine, server), 0);
    assert.equal(server.keys.size, 0, "no room key went to the blacklisted device's key");
  });

  it("stops uploading when the server has another version; marks nothing under the wrong version", async () => {
    const machine = await machineFor("@alice:example.org", "ALICE1");
    const other = await machineFor("@bob:example.org", "BOB1");
    await withSessions(machine, other, 3);
    const server = new BackupServer();
    await createVersion(machine, server);
    // Another device replaces the version (with a key this device does not hold).
    server.create({ auth_data: { public_key: PkDecryption.create().publicKey } });
    assert.equal(await uploadAll(machine, server), 1);
    let status = await machine.backup.status();
    assert.deepEqual([status.stopped, status.uploading, status.backedUp], ["version_changed", false, 0]);
    assert.equal(await machine.backup.nextUpload(), undefined);
    assert.deepEqual(await machine.backup.checkVersion(server.current()), {
      kind: "stopped",
      reason: "version_changed",
      changed: false,
    });
    // Deleted on the server.
    assert.equal((await machine.backup.checkVersion(null)).kind, "stopped");
    status = await machine.backup.status();
    assert.equal(status.stopped, "version_deleted");

    // A batch in flight while the version changes is not marked under the new one.
    const again = await machineFor("@alice:example.org", "ALICE2");
    await withSessions(again, other, 2);
    const key = await createVersion(again, server);
    const inFlight = await again.backup.nextUpload();
    assert.ok(inFlight);
    const replaced = server.create({ auth_data: { public_key: PkDecryption.fromPrivateKey(key).publicKey } });
    assert.equal((await again.backup.useVersion(server.current(), key)).trusted, true);
    assert.equal(await again.backup.uploaded(inFlight.id), 0);
    assert.equal((await again.backup.status()).version, replaced.version);
    assert.equal((await again.backup.status()).backedUp, 0);
  });

  it("looks a missing session up in the backup before asking other devices; asks them when it is not there", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:example.org", deviceId: "ALICE1" });
    const bob = await TestClient.create(hs, { userId: "@bob:example.org", deviceId: "BOB1" });
    await alice.sync();
    await bob.sync();
    const members = joined(alice.userId, bob.userId);
    const first = await bob.sendMessage(ROOM, members, "from the backup");
    await alice.sync();
    const server = new BackupServer();
    const key = await createVersion(alice.machine, server);
    await uploadAll(alice.machine, server);

    // A new device of Alice's, with the backup key but without the room key.
    const alice2 = await TestClient.create(hs, { userId: alice.userId, deviceId: "ALICE2" });
    await alice2.machine.backup.useVersion(server.current(), key);
    await assert.rejects(
      alice2.machine.decryptRoomEvent(first, ROOM),
      (e) => e instanceof DecryptionError && e.code === "UNKNOWN_SESSION",
    );
    const keyRequests = async () =>
      (await alice2.machine.outgoingRequests()).filter(
        (r) => r.type === "to_device" && r.eventType === "m.room_key_request",
      );
    assert.equal((await keyRequests()).length, 0, "no key request while the backup is asked");
    const [lookup] = await alice2.machine.backup.lookupRequests();
    assert.ok(lookup);
    assert.equal(lookup.sessionId, (first.content as { session_id: string }).session_id);
    const record = server.all().rooms[ROOM]?.sessions[lookup.sessionId];
    const decrypted = await alice2.machine.backup.receiveLookup(lookup.id, record);
    assert.deepEqual(
      decrypted.map((d) => d.content.body),
      ["from the backup"],
    );
    assert.equal((await alice2.machine.decryptRoomEvent(first, ROOM)).content.body, "from the backup");
    // Restored from the version in use: not uploaded again.
    assert.equal(await alice2.machine.backup.nextUpload(), undefined);

    // A session the backup does not have: the lookup comes back empty, then our devices are asked.
    await bob.machine.discardRoomKey(ROOM);
    const second = await bob.sendMessage(ROOM, members, "not backed up");
    await assert.rejects(alice2.machine.decryptRoomEvent(second, ROOM), {
      name: "DecryptionError",
      code: "UNKNOWN_SESSION",
    });
    const [missing] = await alice2.machine.backup.lookupRequests();
    assert.ok(missing);
    assert.deepEqual(await alice2.machine.backup.receiveLookup(missing.id, undefined), []);
    assert.equal((await keyRequests()).length, 1);
    // Not looked up twice in this process.
    await assert.rejects(alice2.machine.decryptRoomEvent(second, ROOM), {
      name: "DecryptionError",
      code: "UNKNOWN_SESSION",
    });
    assert.deepEqual(await alice2.machine.backup.lookupRequests(), []);
  });

  it("says from memory, even while another step runs, whether lookups or uploads are waiting", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:example.org", deviceId: "ALICE1" });
    const bob = await TestClient.create(hs, { userId: "@bob:example.org", deviceId: "BOB1" });
    await alice.sync();
    await bob.sync();
    const first = await bob.sendMessage(ROOM, joined(alice.userId, bob.userId), "later");
    const server = new BackupServer();
    const key = await createVersion(alice.machine, server);
    await uploadAll(alice.machine, server);
    assert.deepEqual(alice.machine.backup.pendingWork(), { lookups: false, uploads: false });

    // A step waiting on the store (a room's settings, read once): the answer does not wait, and
    // is what memory holds, not "yes" for whatever that step might do.
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const read = alice.store.getRoomSettings.bind(alice.store);
    alice.store.getRoomSettings = async (roomId) => {
      await gate;
      return read(roomId);
    };
    const slow = alice.machine.getRoomSettings("!elsewhere:example.org");
    assert.deepEqual(alice.machine.backup.pendingWork(), { lookups: false, uploads: false });
    release();
    await slow;
    alice.store.getRoomSettings = read;

    // An event whose session is missing queues a lookup; a room key arriving, an upload.
    const alice2 = await TestClient.create(hs, { userId: alice.userId, deviceId: "ALICE2" });
    await alice2.machine.backup.useVersion(server.current(), key);
    // A new version: the store may hold keys to back up until it was asked once.
    assert.deepEqual(alice2.machine.backup.pendingWork(), { lookups: false, uploads: true });
    assert.equal(await alice2.machine.backup.nextUpload(), undefined);
    assert.deepEqual(alice2.machine.backup.pendingWork(), { lookups: false, uploads: false });
    await assert.rejects(alice2.machine.decryptRoomEvent(first, ROOM), {
      name: "DecryptionError",
      code: "UNKNOWN_SESSION",
    });
    assert.equal(alice2.machine.backup.pendingWork().lookups, true);
    await alice.sync();
    assert.equal(alice.machine.backup.pendingWork().uploads, true);
  });
});
