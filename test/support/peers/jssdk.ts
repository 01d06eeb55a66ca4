// Interop peer: matrix-js-sdk 43 with its Rust crypto (matrix-sdk-crypto-wasm, on vodozemac), driven
// from a test. One `JsSdkPeer` is one logged-in device with an in-memory crypto store.
//
//   const alice = await JsSdkPeer.register(baseUrl, "alice", "pw");   // syncing once this resolves
//   const roomId = await alice.createRoom({ encrypted: true, invite: [bob.userId] });
//   await alice.sendText(roomId, "hi");
//   ...
//   await alice.close();
// First, before the SDK loads: Promise.withResolvers polyfill, silenced logger, unref'd timers.
import "./jssdk-env.ts";
import { initAsync, OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import * as sdk from "matrix-js-sdk";
import {
  type CryptoApi,
  CryptoEvent,
  decodeRecoveryKey,
  type UserVerificationStatus,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import { budget } from "../budget.ts";
import { PeerError, withTimeout } from "./errors.ts";
import { silentLogger } from "./jssdk-env.ts";
import {
  type CreateRoomOptions,
  DEFAULT_PEER_TIMEOUT_MS,
  type IdentityKeys,
  type Membership,
  type Peer,
  type PeerMessage,
} from "./types.ts";

type MatrixClient = sdk.MatrixClient;
type MatrixEvent = sdk.MatrixEvent;
/** PBKDF2 rounds for key export files: low, since tests make many; the count is recorded in the file. */
export const EXPORT_ROUNDS = 10_000;

/** The backup decryption key and version, as one device hands it to another (in real life via 4S). */
export interface BackupSecret {
  version: string;
  privateKey: Uint8Array;
}

export interface JsSdkPeerOptions {
  /** Reuse (login) or request (register) this device ID. */
  deviceId?: string;
  /** The SDK's HTTP calls go through this (to hold or fail some of them in a test). */
  fetch?: typeof globalThis.fetch;
  /** Set false to call `startSync()` yourself later. Default true. */
  startSync?: boolean;
  /**
   * Sync with lazy-loaded members, as Element does (the crypto then fetches `/members` before it
   * encrypts). Default true.
   */
  lazyLoadMembers?: boolean;
  /**
   * Keep the crypto store in IndexedDB under this database prefix instead of in memory (needs an
   * `indexedDB` global: in Node, `fake-indexeddb`). A later `login` with the same `deviceId` and
   * prefix restarts the device from it.
   */
  cryptoDatabasePrefix?: string;
}

interface Credentials {
  userId: string;
  accessToken: string;
  deviceId: string;
}

const ENCRYPTION_CONTENT = { algorithm: "m.megolm.v1.aes-sha2" } as const;

export class JsSdkPeer implements Peer {
  readonly kind = "js-sdk" as const;
  readonly userId: string;
  readonly deviceId: string;
  private syncing: Promise<void> | undefined;
  /** Sync responses processed so far (the SDK emits SYNCING or PREPARED for each). */
  private completedSyncs = 0;
  private closed = false;
  /** The `m.dummy` events the crypto decrypted: sender and the sending device's Curve25519 key. */
  private readonly dummies: { sender: string; senderKey: string }[] = [];

  private constructor(
    /** The underlying client, for what this driver does not wrap. */
    readonly client: MatrixClient,
    credentials: Credentials,
    private readonly lazyLoadMembers: boolean,
    /** The secret storage key the SDK's `getSecretStorageKey` callback hands out (see `useRecoveryKey`). */
    private readonly secretStorageKey: { key?: Uint8Array },
  ) {
    this.userId = credentials.userId;
    this.deviceId = credentials.deviceId;
    client.on(sdk.ClientEvent.Sync, (state) => {
      if (state === sdk.SyncState.Syncing || state === sdk.SyncState.Prepared) this.completedSyncs += 1;
      // A dropped sync is first re-tried after 2-7 s. Test servers restart in milliseconds, and
      // pooled connections the restart closed fail one by one, so re-try that first time at once.
      // (A failed re-try moves the SDK to ERROR, which keeps its back-off: no tight loop while down.)
      if (state === sdk.SyncState.Reconnecting) client.retryImmediately();
    });
    client.on(sdk.ClientEvent.ReceivedToDeviceMessage, ({ message, encryptionInfo }) => {
      if (message.type !== "m.dummy" || encryptionInfo === null) return;
      this.dummies.push({ sender: message.sender, senderKey: encryptionInfo.senderCurve25519KeyBase64 });
    });
  }

  /** Registers `username` (UIA `m.login.dummy`) and returns its first device, syncing. */
  static async register(
    baseUrl: string,
    username: string,
    password: string,
    options: JsSdkPeerOptions = {},
  ): Promise<JsSdkPeer> {
    const anon = sdk.createClient({ baseUrl, logger: silentLogger });
    const body = {
      username,
      password,
      initial_device_display_name: `${username} (js-sdk)`,
      ...(options.deviceId ? { device_id: options.deviceId } : {}),
    };
    const res = await refusedAs("register", async () => {
      // First call without auth: the server answers 401 with the flows and a UIA session.
      const session = await uiaSession(() => anon.registerRequest(body));
      return anon.registerRequest({ ...body, auth: { type: "m.login.dummy", session } });
    });
    if (!res.access_token || !res.device_id) {
      throw new PeerError("REQUEST_FAILED", "register returned no access token or device ID");
    }
    return JsSdkPeer.open(
      baseUrl,
      { userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id },
      options,
    );
  }

  /** Logs in with a password (a new device unless `options.deviceId` names an existing one). */
  static async login(
    baseUrl: string,
    username: string,
    password: string,
    options: JsSdkPeerOptions = {},
  ): Promise<JsSdkPeer> {
    const anon = sdk.createClient({ baseUrl, logger: silentLogger });
    const res = await refusedAs("login", () =>
      anon.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: username },
        password,
        initial_device_display_name: `${username} (js-sdk)`,
        ...(options.deviceId ? { device_id: options.deviceId } : {}),
      }),
    );
    return JsSdkPeer.open(
      baseUrl,
      { userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id },
      options,
    );
  }

  private static async open(
    baseUrl: string,
    credentials: Credentials,
    options: JsSdkPeerOptions,
  ): Promise<JsSdkPeer> {
    const secretStorageKey: { key?: Uint8Array } = {};
    const client = sdk.createClient({
      baseUrl,
      ...credentials,
      ...(options.fetch !== undefined ? { fetchFn: options.fetch } : {}),
      logger: silentLogger,
      cryptoCallbacks: {
        // Secret storage asks for its key here: the one `useRecoveryKey` or `bootstrapSecretStorage` set.
        getSecretStorageKey: async ({ keys }) => {
          const keyId = Object.keys(keys)[0];
          return keyId === undefined || secretStorageKey.key === undefined
            ? null
            : [keyId, new Uint8Array(secretStorageKey.key)];
        },
      },
    });
    await client.initRustCrypto(
      options.cryptoDatabasePrefix === undefined
        ? { useIndexedDB: false }
        : { useIndexedDB: true, cryptoDatabasePrefix: options.cryptoDatabasePrefix },
    );
    const peer = new JsSdkPeer(client, credentials, options.lazyLoadMembers ?? true, secretStorageKey);
    try {
      if (options.startSync !== false) await peer.startSync();
    } catch (e) {
      await peer.close();
      throw e;
    }
    return peer;
  }

  /** Starts the sync loop; resolves after the first sync has been processed. Idempotent. */
  startSync(timeoutMs = DEFAULT_PEER_TIMEOUT_MS): Promise<void> {
    this.assertOpen();
    this.syncing ??= (async () => {
      const prepared = new Promise<void>((resolve) => {
        const onSync = (state: sdk.SyncState): void => {
          if (state === sdk.SyncState.Prepared) {
            this.client.off(sdk.ClientEvent.Sync, onSync);
            resolve();
          }
        };
        this.client.on(sdk.ClientEvent.Sync, onSync);
      });
      await this.client.startClient({ initialSyncLimit: 50, lazyLoadMembers: this.lazyLoadMembers });
      await withTimeout(prepared, timeoutMs, () => `${this.userId}: first sync`);
    })();
    return this.syncing;
  }

  /** Stops syncing and frees the crypto machine. The peer cannot be restarted; log in again instead. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.stopClient();
  }

  close(): Promise<void> {
    return this.stop();
  }

  /**
   * After the homeserver was unreachable: resolves at the first sync that succeeds after this call.
   * The SDK polls a lost server with a back-off of several seconds; like Element when the browser
   * reports it is online again, this makes it retry at once (and again at every failure).
   */
  async resumeSync(timeoutMs = DEFAULT_PEER_TIMEOUT_MS): Promise<void> {
    const target = this.completedSyncs + 1;
    await this.waitFor(
      () => {
        if (this.completedSyncs >= target) return true;
        this.client.retryImmediately();
        return false;
      },
      [sdk.ClientEvent.Sync],
      timeoutMs,
      () => `${this.userId}: no successful sync after the server came back`,
    );
  }

  /** Drops the room's outbound Megolm session (`forceDiscardSession`): the next send shares a new key. */
  async discardGroupSession(roomId: string): Promise<void> {
    await this.crypto().forceDiscardSession(roomId);
  }

  /**
   * Waits until the crypto decrypted an `m.dummy` from `sender`'s device with Curve25519 key
   * `senderKey`: that device made a new Olm session with this one (to unwedge a broken session).
   */
  async waitForDummy(sender: string, senderKey: string, timeoutMs = DEFAULT_PEER_TIMEOUT_MS): Promise<void> {
    await this.waitFor(
      () => this.dummies.some((d) => d.sender === sender && d.senderKey === senderKey),
      [sdk.ClientEvent.ReceivedToDeviceMessage],
      timeoutMs,
      () => `${this.userId}: no m.dummy from ${sender}`,
    );
  }

  async identityKeys(): Promise<IdentityKeys> {
    const keys = await this.crypto().getOwnDeviceKeys();
    return { curve25519: keys.curve25519, ed25519: keys.ed25519 };
  }

  async createRoom(options: CreateRoomOptions = {}): Promise<string> {
    await this.startSync();
    const { room_id: roomId } = await refusedAs("createRoom", () =>
      this.client.createRoom({
        preset: sdk.Preset.PrivateChat,
        ...(options.invite ? { invite: options.invite } : {}),
        ...(options.name ? { name: options.name } : {}),
        ...(options.encrypted
          ? { initial_state: [{ type: "m.room.encryption", state_key: "", content: ENCRYPTION_CONTENT }] }
          : {}),
      }),
    );
    await this.waitUntilJoined(roomId, DEFAULT_PEER_TIMEOUT_MS);
    return roomId;
  }

  async join(roomId: string): Promise<void> {
    await this.startSync();
    await refusedAs("join", () => this.client.joinRoom(roomId));
    await this.waitUntilJoined(roomId, DEFAULT_PEER_TIMEOUT_MS);
  }

  async invite(roomId: string, userId: string): Promise<void> {
    await refusedAs("invite", () => this.client.invite(roomId, userId));
  }

  async leave(roomId: string): Promise<void> {
    await refusedAs("leave", () => this.client.leave(roomId));
    await this.waitFor(
      () => this.client.getRoom(roomId)?.getMyMembership() === "leave",
      [sdk.RoomEvent.MyMembership, sdk.ClientEvent.Sync],
      DEFAULT_PEER_TIMEOUT_MS,
      () => `${this.userId}: left ${roomId} but sync never showed it`,
    );
  }

  async sendText(roomId: string, body: string): Promise<string> {
    await this.startSync();
    // The SDK encrypts only rooms it has seen to be encrypted; never let a send race the sync that says so.
    await this.waitUntilJoined(roomId, DEFAULT_PEER_TIMEOUT_MS);
    const res = await refusedAs("send", () => this.client.sendTextMessage(roomId, body));
    return res.event_id;
  }

  /**
   * The messages of `roomId` in this client's live timeline, oldest first. (After a `limited` sync the
   * SDK starts a new live timeline, so older events drop out of this list.)
   */
  messages(roomId: string): PeerMessage[] {
    const events = this.client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [];
    return events.flatMap((ev) => {
      const m = toPeerMessage(ev);
      return m ? [m] : [];
    });
  }

  async waitForMessage(
    roomId: string,
    predicate: (m: PeerMessage) => boolean,
    timeoutMs = DEFAULT_PEER_TIMEOUT_MS,
  ): Promise<PeerMessage> {
    this.assertOpen();
    let found: PeerMessage | undefined;
    const check = (ev: MatrixEvent): boolean => {
      if (found || ev.getRoomId() !== roomId) return found !== undefined;
      const m = toPeerMessage(ev);
      if (m && predicate(m)) found = m;
      return found !== undefined;
    };
    const scanTimeline = (): boolean =>
      (this.client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? []).some(check);
    await this.waitFor(
      scanTimeline,
      [sdk.RoomEvent.Timeline, sdk.MatrixEventEvent.Decrypted, sdk.ClientEvent.Sync],
      timeoutMs,
      () => {
        const seen = this.messages(roomId);
        const utd = seen.filter((m) => m.encrypted && !m.decrypted).length;
        return `${this.userId}: no matching message in ${roomId} (${seen.length} seen, ${utd} undecryptable)`;
      },
    );
    return found!;
  }

  async waitForMembership(
    roomId: string,
    userId: string,
    membership: Membership,
    timeoutMs = DEFAULT_PEER_TIMEOUT_MS,
  ): Promise<void> {
    await this.waitFor(
      () => this.client.getRoom(roomId)?.getMember(userId)?.membership === membership,
      [sdk.RoomStateEvent.Members, sdk.RoomMemberEvent.Membership, sdk.ClientEvent.Sync],
      timeoutMs,
      () => `${this.userId}: ${userId} never became "${membership}" in ${roomId}`,
    );
  }

  /** The device IDs of `userId` this client knows (from its own key queries). */
  async knownDevices(userId: string): Promise<string[]> {
    const devices = await this.crypto().getUserDeviceInfo([userId]);
    return [...(devices.get(userId)?.keys() ?? [])];
  }

  async waitForDevices(
    userId: string,
    predicate: (deviceIds: string[]) => boolean,
    timeoutMs = DEFAULT_PEER_TIMEOUT_MS,
  ): Promise<void> {
    await this.waitFor(
      async () => predicate(await this.knownDevices(userId)),
      [sdk.ClientEvent.Sync, CryptoEvent.DevicesUpdated],
      timeoutMs,
      () => `${this.userId}: the devices of ${userId} never matched`,
    );
  }

  /** Logs this device out (the server deletes it and its keys), then stops the client. */
  async logout(): Promise<void> {
    this.assertOpen();
    await refusedAs("logout", () => this.client.logout(true));
    this.closed = true;
  }

  /**
   * Creates and publishes cross-signing keys, authenticating the upload with the account password
   * (user-interactive auth, `m.login.password`), and resolves once this device is cross-signed.
   */
  async bootstrapCrossSigning(password: string, timeoutMs = DEFAULT_PEER_TIMEOUT_MS): Promise<void> {
    await this.publishCrossSigning(password, false, timeoutMs);
  }

  /** Replaces the account's cross-signing identity with a new one (others see it change). */
  async resetCrossSigning(password: string, timeoutMs = DEFAULT_PEER_TIMEOUT_MS): Promise<void> {
    await this.publishCrossSigning(password, true, timeoutMs);
  }

  private async publishCrossSigning(password: string, reset: boolean, timeoutMs: number): Promise<void> {
    const crypto = this.crypto();
    await refusedAs("cross-signing bootstrap", () =>
      crypto.bootstrapCrossSigning({
        setupNewCrossSigning: reset,
        authUploadDeviceSigningKeys: async (makeRequest) => {
          // Servers may let a user publish their first cross-signing keys without UIA (spec v1.11,
          // MSC3967); otherwise the 401 carries the session to authenticate in.
          let session: string;
          try {
            return await makeRequest(null);
          } catch (e) {
            session = uiaSessionOf(e) ?? rethrow(e);
          }
          await makeRequest({
            type: "m.login.password",
            identifier: { type: "m.id.user", user: this.userId },
            password,
            session,
          });
        },
      }),
    );
    await this.waitFor(
      async () =>
        (await crypto.isCrossSigningReady()) &&
        (await crypto.getDeviceVerificationStatus(this.userId, this.deviceId))?.crossSigningVerified === true,
      [sdk.ClientEvent.Sync],
      timeoutMs,
      () => `${this.userId}: device ${this.deviceId} not cross-signed after bootstrap`,
    );
  }

  /**
   * How this client judges `userId`'s `deviceId`: `signedByOwner` once a keys query showed the
   * owner's self-signing key signing it, `crossSigningVerified` when that chain reaches a trusted
   * identity (our own after bootstrap). Undefined while the device is unknown.
   */
  async deviceStatus(
    userId: string,
    deviceId: string,
  ): Promise<{ signedByOwner: boolean; crossSigningVerified: boolean } | undefined> {
    const s = await this.crypto().getDeviceVerificationStatus(userId, deviceId);
    return s ? { signedByOwner: s.signedByOwner, crossSigningVerified: s.crossSigningVerified } : undefined;
  }

  /**
   * js-sdk's view of `userId`'s identity once it satisfies `predicate` (looked at again after each
   * sync, key change and trust change).
   */
  async waitForUserStatus(
    userId: string,
    predicate: (s: UserVerificationStatus) => boolean,
    timeoutMs = DEFAULT_PEER_TIMEOUT_MS,
  ): Promise<UserVerificationStatus> {
    let status: UserVerificationStatus | undefined;
    await this.waitFor(
      async () => {
        status = await this.crypto().getUserVerificationStatus(userId);
        return predicate(status);
      },
      [sdk.ClientEvent.Sync, CryptoEvent.KeysChanged, CryptoEvent.UserTrustStatusChanged],
      timeoutMs,
      () => `${this.userId}: ${userId}'s identity never reached the expected state`,
    );
    return status as UserVerificationStatus;
  }

  /** Resolves once `deviceStatus(userId, deviceId)` satisfies `predicate` (re-checked after each sync). */
  async waitForDeviceStatus(
    userId: string,
    deviceId: string,
    predicate: (s: { signedByOwner: boolean; crossSigningVerified: boolean }) => boolean,
    timeoutMs = DEFAULT_PEER_TIMEOUT_MS,
  ): Promise<void> {
    await this.waitFor(
      async () => {
        const s = await this.deviceStatus(userId, deviceId);
        return s !== undefined && predicate(s);
      },
      [sdk.ClientEvent.Sync, CryptoEvent.DevicesUpdated, CryptoEvent.UserTrustStatusChanged],
      timeoutMs,
      () => `${this.userId}: device ${userId}/${deviceId} never reached the expected status`,
    );
  }

  /** Creates a new server-side key backup version with a fresh key and starts backing up to it. */
  async enableKeyBackup(): Promise<BackupSecret> {
    const crypto = this.crypto();
    await refusedAs("key backup", () => crypto.resetKeyBackup());
    const version = await crypto.getActiveSessionBackupVersion();
    const privateKey = await crypto.getSessionBackupPrivateKey();
    if (!version || !privateKey) throw new PeerError("REQUEST_FAILED", "key backup did not become active");
    return { version, privateKey };
  }

  /**
   * Resolves once the server's backup holds at least as many sessions as this device knows: the SDK
   * uploads in the background and has no "all done" signal, so ask the server.
   */
  async waitForKeyBackupUploaded(timeoutMs = DEFAULT_PEER_TIMEOUT_MS): Promise<number> {
    const crypto = this.crypto();
    let count = 0;
    await this.poll(
      async () => {
        const local = (await crypto.exportRoomKeys()).length;
        // getKeyBackupInfo() returns the SDK's cached copy; ask the server for its count.
        const version = await crypto.getActiveSessionBackupVersion();
        if (!version) return false;
        const info = await this.client.http.authedRequest<{ count?: unknown }>(
          sdk.Method.Get,
          `/room_keys/version/${encodeURIComponent(version)}`,
        );
        count = typeof info.count === "number" ? info.count : 0;
        return local > 0 && count >= local;
      },
      timeoutMs,
      () => `${this.userId}: key backup holds ${count} sessions, fewer than this device knows`,
    );
    return count;
  }

  /**
   * Downloads and imports every key from the server-side backup, with the key handed over from
   * another device (`secret`) or the one this device already holds.
   */
  async restoreKeyBackup(secret?: BackupSecret): Promise<{ total: number; imported: number }> {
    const crypto = this.crypto();
    if (secret) await crypto.storeSessionBackupPrivateKey(secret.privateKey, secret.version);
    const res = await refusedAs("key backup restore", () => crypto.restoreKeyBackup());
    return { total: res.total, imported: res.imported };
  }

  /**
   * Sets up secret storage as Element does (`bootstrapSecretStorage` with a new key, random or
   * from a passphrase, and a new key backup); the cross-signing keys this device holds are stored
   * too. Returns the recovery key (`EsT… …`).
   */
  async bootstrapSecretStorage(options: { passphrase?: string; backup?: boolean } = {}): Promise<string> {
    const crypto = this.crypto();
    const created = await crypto.createRecoveryKeyFromPassphrase(options.passphrase);
    this.secretStorageKey.key = created.privateKey;
    await refusedAs("secret storage bootstrap", () =>
      crypto.bootstrapSecretStorage({
        createSecretStorageKey: async () => created,
        setupNewSecretStorage: true,
        setupNewKeyBackup: options.backup !== false,
      }),
    );
    if (created.encodedPrivateKey === undefined) throw new PeerError("PROTOCOL", "no recovery key was made");
    return created.encodedPrivateKey;
  }

  /**
   * Recovers as Element does with a recovery key: the cross-signing keys from secret storage
   * (this device gets cross-signed), then the backup key, then the whole backup restored.
   */
  async recoverWithRecoveryKey(recoveryKey: string): Promise<{ total: number; imported: number }> {
    const crypto = this.crypto();
    this.secretStorageKey.key = decodeRecoveryKey(recoveryKey);
    await refusedAs("cross-signing from secret storage", () => crypto.bootstrapCrossSigning({}));
    await refusedAs("backup key from secret storage", () =>
      crypto.loadSessionBackupPrivateKeyFromSecretStorage(),
    );
    await crypto.checkKeyBackupAndEnable();
    const res = await refusedAs("key backup restore", () => crypto.restoreKeyBackup());
    return { total: res.total, imported: res.imported };
  }

  /** A standard key export file (`-----BEGIN MEGOLM SESSION DATA-----`), as Element's "Export E2E room keys". */
  async exportRoomKeys(passphrase: string, rounds = EXPORT_ROUNDS): Promise<string> {
    const json = await this.crypto().exportRoomKeysAsJson();
    await initAsync();
    return OlmMachine.encryptExportedRoomKeys(json, passphrase, rounds);
  }

  /** Imports a standard key export file; events waiting for those keys are decrypted by the SDK. */
  async importRoomKeys(data: string, passphrase: string): Promise<void> {
    await initAsync();
    await this.crypto().importRoomKeysAsJson(OlmMachine.decryptExportedRoomKeys(data, passphrase));
  }

  private crypto(): CryptoApi {
    this.assertOpen();
    const crypto = this.client.getCrypto();
    if (!crypto) throw new PeerError("REQUEST_FAILED", "Rust crypto is not initialised");
    return crypto;
  }

  private assertOpen(): void {
    if (this.closed) throw new PeerError("CLOSED", `${this.userId}: peer already closed`);
  }

  private async waitUntilJoined(roomId: string, timeoutMs: number): Promise<void> {
    // Joined, and when the room is encrypted, the crypto backend has processed m.room.encryption.
    await this.waitFor(
      async () => {
        const room = this.client.getRoom(roomId);
        if (room?.getMyMembership() !== "join") return false;
        return !room.hasEncryptionStateEvent() || (await this.crypto().isEncryptionEnabledInRoom(roomId));
      },
      [sdk.RoomEvent.MyMembership, sdk.ClientEvent.Sync],
      timeoutMs,
      () => `${this.userId}: not joined to ${roomId}`,
    );
  }

  /** Re-evaluates `condition` on each of the client's `events` until it holds. */
  private async waitFor(
    condition: () => boolean | Promise<boolean>,
    events: string[],
    timeoutMs: number,
    what: () => string,
  ): Promise<void> {
    this.assertOpen();
    const emitter = this.client as unknown as NodeJS.EventEmitter;
    let listener: (() => void) | undefined;
    const done = new Promise<void>((resolve, reject) => {
      let running = false;
      let again = false;
      const evaluate = async (): Promise<void> => {
        if (running) {
          again = true;
          return;
        }
        running = true;
        try {
          do {
            again = false;
            if (await condition()) return resolve();
          } while (again);
        } catch (e) {
          reject(e);
        } finally {
          running = false;
        }
      };
      listener = () => void evaluate();
      for (const e of events) emitter.on(e, listener);
      void evaluate();
    });
    try {
      await withTimeout(done, timeoutMs, what);
    } finally {
      if (listener) for (const e of events) emitter.off(e, listener);
    }
  }

  private async poll(
    condition: () => Promise<boolean>,
    timeoutMs: number,
    what: () => string,
  ): Promise<void> {
    const left = budget(timeoutMs);
    while (!(await condition())) {
      if (left.over()) throw new PeerError("TIMEOUT", `${what()} (after ${left.spentMs()} ms)`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Runs a homeserver call, turning the SDK's HTTP errors into `PeerError("REQUEST_FAILED")`. */
async function refusedAs<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof sdk.MatrixError) {
      const error = typeof e.data.error === "string" ? e.data.error : "";
      throw new PeerError("REQUEST_FAILED", `${what}: ${e.errcode ?? e.httpStatus ?? ""} ${error}`.trim(), {
        errcode: e.errcode,
        httpStatus: e.httpStatus,
      });
    }
    if (e instanceof sdk.HTTPError) {
      throw new PeerError("REQUEST_FAILED", `${what}: HTTP ${e.httpStatus}`, { httpStatus: e.httpStatus });
    }
    if (e instanceof sdk.ConnectionError) throw new PeerError("REQUEST_FAILED", `${what}: connection failed`);
    throw e;
  }
}

/** The UIA session the server hands out on a 401 to `attempt` (made without auth). */
async function uiaSession(attempt: () => Promise<unknown>): Promise<string> {
  try {
    await attempt();
  } catch (e) {
    return uiaSessionOf(e) ?? rethrow(e);
  }
  throw new PeerError("REQUEST_FAILED", "server accepted a request without user-interactive auth");
}

/** The `session` of a user-interactive auth 401, if `e` is one. */
function uiaSessionOf(e: unknown): string | undefined {
  const session = e instanceof sdk.MatrixError && e.httpStatus === 401 ? e.data.session : undefined;
  return typeof session === "string" ? session : undefined;
}

function rethrow(e: unknown): never {
  throw e;
}

/** A remote (not local-echo) message event as a `PeerMessage`; undefined for anything else. */
function toPeerMessage(ev: MatrixEvent): PeerMessage | undefined {
  const eventId = ev.getId();
  const roomId = ev.getRoomId();
  const sender = ev.getSender();
  if (ev.status !== null || !eventId?.startsWith("$") || !roomId || !sender) return undefined;
  const encrypted = ev.isEncrypted();
  const decrypted =
    encrypted && !ev.isDecryptionFailure() && !ev.isBeingDecrypted() && ev.getClearContent() !== null;
  const type = ev.getType();
  if (type !== "m.room.message" && type !== "m.room.encrypted") return undefined;
  const body = ev.getContent().body;
  const sessionId = encrypted ? ev.getWireContent().session_id : undefined;
  return {
    roomId,
    eventId,
    sender,
    type,
    body: typeof body === "string" && (decrypted || !encrypted) ? body : undefined,
    decrypted,
    encrypted,
    sessionId: typeof sessionId === "string" ? sessionId : undefined,
  };
}
