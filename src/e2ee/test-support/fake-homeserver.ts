/**
 * Test support: an in-memory homeserver for the key endpoints and to-device routing, and a small
 * driver that plays the client's part for one `OlmMachine`. Only tests import this.
 */

import type { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { type CryptoStore, MemoryCryptoStore, MemoryStoreData } from "../../store/index.ts";
import type { EncryptedRoomEvent } from "../decryption/room-events.ts";
import { OlmMachine, type OlmMachineOptions } from "../machine.ts";
import type {
  DeviceKeysJson,
  KeysClaimRequest,
  OutgoingRequest,
  SignatureUploadRequest,
  SignedKeyJson,
  SigningKeysUploadRequest,
} from "../requests.ts";
import type { RoomEncryptionSettings, RoomMember } from "../room-keys/settings.ts";
import type { SyncChangesResult } from "../sync/to-device.ts";

interface ServerDevice {
  keys: DeviceKeysJson | undefined;
  oneTimeKeys: Map<string, SignedKeyJson>;
  fallback: { keyId: string; key: SignedKeyJson; used: boolean } | undefined;
  inbox: { type: string; sender: string; content: Record<string, unknown> }[];
  changed: Set<string>;
  /** One-time key IDs handed out by claims: uploading one again would let it be used twice. */
  claimed: Set<string>;
}

/** An error answer (status and JSON body), as a real server sends it. */
export class FakeHttpError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;

  constructor(status: number, body: Record<string, unknown>) {
    super(`HTTP ${status}: ${String(body.errcode)}`);
    this.status = status;
    this.body = body;
  }
}

export class FakeHomeserver {
  readonly devices = new Map<string, Map<string, ServerDevice>>();
  /** Users whose homeserver is "down": queries list them under `failures`. */
  readonly unreachable = new Set<string>();
  readonly #txns = new Set<string>();
  /** Cross-signing keys per user: master, self_signing, user_signing. */
  readonly crossSigning = new Map<string, Record<string, Record<string, unknown>>>();
  #eventCounter = 0;
  /** Every to-device message delivered, for assertions. */
  readonly sentToDevice: { eventType: string; from: string; to: string; content: Record<string, unknown> }[] =
    [];

  device(userId: string, deviceId: string): ServerDevice {
    let byUser = this.devices.get(userId);
    if (byUser === undefined) {
      byUser = new Map();
      this.devices.set(userId, byUser);
    }
    let d = byUser.get(deviceId);
    if (d === undefined) {
      d = {
        keys: undefined,
        oneTimeKeys: new Map(),
        fallback: undefined,
        inbox: [],
        changed: new Set(),
        claimed: new Set(),
      };
      byUser.set(deviceId, d);
    }
    return d;
  }

  #announce(userId: string): void {
    for (const byUser of this.devices.values()) for (const d of byUser.values()) d.changed.add(userId);
  }

  /** Removes a device (logout): its keys disappear and everyone is told its user changed. */
  deleteDevice(userId: string, deviceId: string): void {
    this.devices.get(userId)?.delete(deviceId);
    this.#announce(userId);
  }

  /** Replaces a device's published keys as a hostile server would. */
  forgeDeviceKeys(userId: string, deviceId: string, keys: DeviceKeysJson): void {
    this.device(userId, deviceId).keys = keys;
    this.#announce(userId);
  }

  /** Deletes every one-time key a device published (so claims fall back). */
  exhaustOneTimeKeys(userId: string, deviceId: string): void {
    this.device(userId, deviceId).oneTimeKeys.clear();
  }

  /** `/keys/device_signing/upload` (no auth asked here). */
  uploadSigningKeys(userId: string, request: SigningKeysUploadRequest): void {
    const b = request.body;
    this.crossSigning.set(userId, {
      master: b.master_key,
      self_signing: b.self_signing_key,
      user_signing: b.user_signing_key,
    });
    this.#announce(userId);
  }

  #uploadSignatures(request: SignatureUploadRequest): unknown {
    for (const [user, byKey] of Object.entries(request.body)) {
      for (const [keyId, signed] of Object.entries(byKey)) {
        const sigs = (signed.signatures ?? {}) as Record<string, Record<string, string>>;
        const target =
          this.devices.get(user)?.get(keyId)?.keys ??
          Object.values(this.crossSigning.get(user) ?? {}).find((k) =>
            Object.values((k.keys ?? {}) as Record<string, string>).includes(keyId),
          );
        if (target === undefined) continue;
        const merged = { ...((target.signatures ?? {}) as Record<string, Record<string, string>>) };
        for (const [signer, byId] of Object.entries(sigs)) merged[signer] = { ...merged[signer], ...byId };
        target.signatures = merged;
        this.#announce(user);
      }
    }
    return { failures: {} };
  }

  nextEventId(): string {
    this.#eventCounter++;
    return `$event${this.#eventCounter}`;
  }

  handle(userId: string, deviceId: string, request: OutgoingRequest): unknown {
    switch (request.type) {
      case "keys_upload": {
        const d = this.device(userId, deviceId);
        if (request.body.device_keys !== undefined) {
          d.keys = request.body.device_keys;
          this.#announce(userId);
        }
        // As Synapse: every one-time key is checked before any is stored (nor the fallback key).
        for (const [keyId, key] of Object.entries(request.body.one_time_keys ?? {})) {
          const existing = d.oneTimeKeys.get(keyId);
          if (existing !== undefined && existing.key !== key.key) {
            throw new FakeHttpError(400, {
              errcode: "M_UNKNOWN",
              error: `One time key ${keyId} already exists. Old key: ${JSON.stringify(existing)}; new key: ${JSON.stringify(key)}`,
            });
          }
          if (d.claimed.has(keyId)) throw new Error("one-time key uploaded again after it was claimed");
        }
        for (const [keyId, key] of Object.entries(request.body.one_time_keys ?? {}))
          d.oneTimeKeys.set(keyId, key);
        for (const [keyId, key] of Object.entries(request.body.fallback_keys ?? {})) {
          d.fallback = { keyId, key, used: false };
        }
        return { one_time_key_counts: { signed_curve25519: d.oneTimeKeys.size } };
      }
      case "keys_query": {
        const out: Record<string, Record<string, DeviceKeysJson>> = {};
        const failures: Record<string, unknown> = {};
        for (const user of Object.keys(request.body.device_keys)) {
          if (this.unreachable.has(user)) {
            failures[user.split(":")[1] ?? user] = { errcode: "M_UNREACHABLE" };
            continue;
          }
          out[user] = {};
          for (const [id, d] of this.devices.get(user) ?? [])
            if (d.keys !== undefined) out[user][id] = d.keys;
        }
        const cs = (usage: string, onlyOwn: boolean) =>
          Object.fromEntries(
            Object.keys(out).flatMap((u) => {
              const key = this.crossSigning.get(u)?.[usage];
              return key === undefined || (onlyOwn && u !== userId) ? [] : [[u, key]];
            }),
          );
        return {
          device_keys: out,
          failures,
          master_keys: cs("master", false),
          self_signing_keys: cs("self_signing", false),
          user_signing_keys: cs("user_signing", true),
        };
      }
      case "keys_claim":
        return this.#claim(request);
      case "to_device": {
        const txn = `${userId}|${deviceId}|${request.id}`;
        if (this.#txns.has(txn)) return {};
        this.#txns.add(txn);
        for (const [user, byDevice] of Object.entries(request.body.messages)) {
          for (const [target, content] of Object.entries(byDevice)) {
            const targets = target === "*" ? [...(this.devices.get(user)?.keys() ?? [])] : [target];
            for (const t of targets) {
              if (user === userId && t === deviceId) continue;
              const d = this.devices.get(user)?.get(t);
              if (d === undefined) continue;
              d.inbox.push({ type: request.eventType, sender: userId, content });
              this.sentToDevice.push({
                eventType: request.eventType,
                from: userId,
                to: `${user}|${t}`,
                content,
              });
            }
          }
        }
        return {};
      }
      case "signature_upload":
        return this.#uploadSignatures(request);
    }
  }

  #claim(request: KeysClaimRequest): unknown {
    const out: Record<string, Record<string, Record<string, SignedKeyJson>>> = {};
    for (const [user, byDevice] of Object.entries(request.body.one_time_keys)) {
      for (const id of Object.keys(byDevice)) {
        const d = this.devices.get(user)?.get(id);
        if (d === undefined) continue;
        const first = d.oneTimeKeys.entries().next().value;
        out[user] ??= {};
        if (first !== undefined) {
          d.oneTimeKeys.delete(first[0]);
          d.claimed.add(first[0]);
          out[user][id] = { [first[0]]: first[1] };
        } else if (d.fallback !== undefined) {
          d.fallback.used = true;
          out[user][id] = { [d.fallback.keyId]: d.fallback.key };
        }
      }
    }
    return { one_time_keys: out, failures: {} };
  }

  /** What `/sync` would carry for this device's E2EE parts (its to-device inbox is drained). */
  syncFor(userId: string, deviceId: string) {
    const d = this.device(userId, deviceId);
    const toDevice = d.inbox.splice(0);
    const changed = [...d.changed];
    d.changed.clear();
    return {
      toDevice,
      deviceLists: { changed, left: [] as string[] },
      oneTimeKeyCounts: { signed_curve25519: d.oneTimeKeys.size },
      unusedFallbackKeyTypes: d.fallback !== undefined && !d.fallback.used ? ["signed_curve25519"] : [],
    };
  }
}

/** Plays the client for one machine against a `FakeHomeserver`. */
export class TestClient {
  readonly hs: FakeHomeserver;
  /** The store's contents: they outlive restarts, as a database file would. */
  readonly data: MemoryStoreData;
  store: CryptoStore;
  machine: OlmMachine;
  readonly options: Omit<OlmMachineOptions, "store">;
  /** Opens the store at its one location (again on each restart). */
  readonly #openStore: () => Promise<CryptoStore>;
  #syncCount = 0;

  private constructor(
    hs: FakeHomeserver,
    data: MemoryStoreData,
    store: CryptoStore,
    machine: OlmMachine,
    options: Omit<OlmMachineOptions, "store">,
    openStore: () => Promise<CryptoStore>,
  ) {
    this.hs = hs;
    this.data = data;
    this.store = store;
    this.machine = machine;
    this.options = options;
    this.#openStore = openStore;
  }

  /**
   * A client on a memory store (`data`), or on the store `openStore` opens (a SQLite file, an
   * IndexedDB database: it must open the same one on every call, as a restart would).
   */
  static async create(
    hs: FakeHomeserver,
    options: Omit<OlmMachineOptions, "store">,
    openStore?: () => Promise<CryptoStore>,
  ): Promise<TestClient> {
    const data = new MemoryStoreData();
    const open =
      openStore ??
      (() => MemoryCryptoStore.open({ userId: options.userId, deviceId: options.deviceId, data }));
    const store = await open();
    const machine = await OlmMachine.open({ ...options, store });
    hs.device(options.userId, options.deviceId);
    const client = new TestClient(hs, data, store, machine, options, open);
    await client.flush();
    return client;
  }

  get userId(): string {
    return this.options.userId;
  }

  get deviceId(): string {
    return this.options.deviceId;
  }

  /** Reopens the machine on the same store (a restart). */
  async restart(): Promise<void> {
    await this.machine.close();
    await this.store.close();
    this.store = await this.#openStore();
    this.machine = await OlmMachine.open({ ...this.options, store: this.store });
  }

  /** Bootstraps cross-signing the way a client would (query own keys, upload, sign the device). */
  async bootstrapCrossSigning(reset = false): Promise<void> {
    await this.machine.receiveKeysChanges([this.userId], []);
    await this.flush();
    const request = await this.machine.bootstrapCrossSigning({ reset });
    if (request === undefined) return;
    this.hs.uploadSigningKeys(this.userId, request);
    await this.machine.markRequestAsSent(request, {});
    await this.flush();
  }

  async send(request: OutgoingRequest): Promise<void> {
    const response = this.hs.handle(this.userId, this.deviceId, request);
    await this.machine.markRequestAsSent(request, response);
  }

  /** Sends outgoing requests until none are left. */
  async flush(): Promise<void> {
    for (let round = 0; round < 10; round++) {
      const requests = await this.machine.outgoingRequests();
      if (requests.length === 0) return;
      for (const r of requests) await this.send(r);
    }
    throw new Error("outgoing requests did not settle");
  }

  async sync(): Promise<SyncChangesResult> {
    const data = this.hs.syncFor(this.userId, this.deviceId);
    this.#syncCount++;
    const result = await this.machine.receiveSyncChanges({ ...data, nextBatch: `s${this.#syncCount}` });
    await this.flush();
    return result;
  }

  /** Everything a client does before sending into an encrypted room. */
  async prepareRoom(
    roomId: string,
    members: readonly RoomMember[],
    settings: RoomEncryptionSettings = {},
  ): Promise<void> {
    const users = members.map((m) => m.userId);
    await this.machine.updateTrackedUsers(users);
    await this.flush();
    const claim = await this.machine.getMissingSessions(users);
    if (claim !== undefined) await this.send(claim);
    for (const r of await this.machine.shareRoomKey(roomId, members, settings)) await this.send(r);
  }

  async sendMessage(
    roomId: string,
    members: readonly RoomMember[],
    body: string,
    settings: RoomEncryptionSettings = {},
  ): Promise<EncryptedRoomEvent> {
    await this.prepareRoom(roomId, members, settings);
    const content = await this.machine.encryptRoomEvent(roomId, "m.room.message", {
      msgtype: "m.text",
      body,
    });
    return { event_id: this.hs.nextEventId(), sender: this.userId, type: "m.room.encrypted", content };
  }
}

export const joined = (...userIds: string[]): RoomMember[] =>
  userIds.map((userId) => ({ userId, membership: "join" }));

/** Alice (device A) and Bob (device B) on a new server, Bob tracking Alice's devices. */
export async function bobTrackingAlice(
  options: Pick<OlmMachineOptions, "now"> = {},
): Promise<{ hs: FakeHomeserver; alice: TestClient; bob: TestClient }> {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", ...options });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", ...options });
  await bob.machine.updateTrackedUsers(["@alice:x"]);
  await bob.sync();
  return { hs, alice, bob };
}

/**
 * An `m.room.message` encrypted by hand with `session`, as `sender`'s device `deviceId` would
 * send it in `roomId` (for sessions a test holds itself, outside any machine). Event ID `$body`.
 */
export function megolmEventIn(
  session: OutboundGroupSession,
  roomId: string,
  sender: string,
  deviceId: string,
  body: string,
) {
  return {
    event_id: `$${body}`,
    sender,
    type: "m.room.encrypted",
    content: {
      algorithm: "m.megolm.v1.aes-sha2",
      ciphertext: session.encrypt(
        JSON.stringify({ type: "m.room.message", content: { body }, room_id: roomId }),
      ),
      session_id: session.sessionId,
      device_id: deviceId,
    },
  };
}
