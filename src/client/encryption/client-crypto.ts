// The client's encryption driver. It owns the `OlmMachine` and its store, feeds it each sync before
// the client emits anything or saves its token, sends what it asks for (one loop at a time), shares
// room keys before encrypting, decrypts timeline events and re-emits the ones whose key came late.
// What a sync does to the engine is in `sync-processing.ts`, decryption in `room-decryption.ts`,
// device and identity trust in `device-trust.ts`; this class runs each under the store's lease.
import type {
  CrossSigningStatus,
  DecryptedRoomEvent,
  DeviceInfo,
  DeviceTrust,
  HeldKeyRequest,
  OutgoingRequest,
  UnlockedSecretStorageKey,
  UserIdentityInfo,
} from "../../e2ee/index.ts";
// Values straight from their files, not from the E2EE barrel: the barrel also leads to the parts
// loaded on first use (secret storage, recovery, dehydration), which a bundler splits off only
// when nothing loaded before them imports them statically.
import { OlmMachine } from "../../e2ee/machine.ts";
import { DEFAULT_KEY_TYPE } from "../../e2ee/secret-storage/names.ts";
import type { BasicEvent, ClientEvent, JsonObject, ToDeviceEvent } from "../../wire/index.ts";
import { systemClock } from "../clock.ts";
import { errorSummary } from "../events/emitter.ts";
import type { Room } from "../rooms/room.ts";
import type {
  DecryptionResult,
  EventEncryptor,
  SyncCryptoChanges,
  SyncProcessor,
  SyncTimeline,
} from "../sync/hooks.ts";
import type { UiaAuth } from "../uia.ts";
import { KeyBackup } from "./backup.ts";
import type {
  ClientCryptoHost,
  ClientCryptoOpenOptions,
  KeyImportResult,
  ProgressCallback,
  RoomTrustRequirements,
} from "./client-crypto-types.ts";
import { emitLaterOutcomes, refusedLaterEvent } from "./decrypted-events.ts";
import { DehydratedDevices } from "./dehydration.ts";
import { DeviceTrustCalls } from "./device-trust.ts";
import { sendOutgoingRequest } from "./dispatch.ts";
import { ClientCryptoError } from "./errors.ts";
import { HistorySharing, type SharedHistory } from "./history-sharing.ts";
import { exportRoomKeyFile, importRoomKeyEntries, openRoomKeyFile } from "./key-export-file.ts";
import { LeaseKeeper } from "./lease.ts";
import type { OpenedStore } from "./options.ts";
import { OutgoingRequestLoop, Serial } from "./outgoing.ts";
import { Recovery } from "./recovery.ts";
import { type RefusedVerificationEvent, RefusedVerificationEvents } from "./refused-verification.ts";
import {
  decryptRoomEvent,
  decryptRoomEvents,
  decryptTimelines,
  type RoomDecryptionParts,
} from "./room-decryption.ts";
import { historyVisibilityOf, RoomEncryption } from "./room-encryption.ts";
import { SecretStorage } from "./secret-storage.ts";
import { processedToDeviceOf, SyncProcessing } from "./sync-processing.ts";

export class ClientCrypto implements SyncProcessor, EventEncryptor {
  readonly machine: OlmMachine;
  /** Server-side key backup: create / use a version, status, restore; uploads run after each sync. */
  readonly backup: KeyBackup;
  readonly #host: ClientCryptoHost;
  readonly #store: OpenedStore;
  readonly #loop: OutgoingRequestLoop;
  /** Room sends run one at a time: each prepares the room's key, then encrypts. */
  readonly #sends = new Serial();
  /** Each room's recorded encryption and trust, its member list, and the send that shares its key. */
  readonly #rooms: RoomEncryption;
  /** Users' devices and identities, and the trust we mark them with. */
  readonly #trust: DeviceTrustCalls;
  /** What each sync does to the engine, before and after its events go out. */
  readonly #syncs: SyncProcessing;
  readonly #refusedVerification = new RefusedVerificationEvents();
  /** `next_batch` of the responses whose verification events wait (`deferVerificationOf`). */
  readonly #deferVerification = new Set<string>();
  #closed = false;
  /** Secret storage (`m.secret_storage.*` account data): keys, and secrets encrypted with them. */
  readonly secretStorage: SecretStorage;
  /** Dehydrated devices (MSC3814): create, rehydrate on a new login, replace on a schedule. */
  readonly dehydration: DehydratedDevices;
  /** Recovery: one recovery key over secret storage, cross-signing and key backup. */
  readonly recovery: Recovery;
  /** History sharing on invite (MSC4268): key bundles sent to invitees and imported from inviters. */
  readonly historySharing: HistorySharing;

  /** The crypto store's lease: every unit of work that touches the engine runs under it. */
  readonly #lease: LeaseKeeper;
  readonly #stopListening: () => void;

  private constructor(machine: OlmMachine, host: ClientCryptoHost, store: OpenedStore, lease: LeaseKeeper) {
    this.machine = machine;
    this.#host = host;
    this.#store = store;
    this.#lease = lease;
    lease.onStale = () => this.#reload();
    // Another tab wrote and let go: catch up now rather than at our next turn (IndexedDB only).
    this.#stopListening = store.store.onChangedElsewhere(() => {
      if (!this.#closed) this.exclusive(async () => undefined).catch((e: unknown) => host.reportError(e));
    });
    this.secretStorage = new SecretStorage({
      http: host.http,
      userId: machine.userId,
      setAccountData: (type, content) => host.setAccountData(type, content),
      defaultKeyCreated: (key) => this.#dehydrationKeysReplaced({ secretStorageKey: key }),
      defaultKeyChanging: (keyId, key) => this.dehydration.defaultKeyChanging(keyId, key),
    });
    this.#loop = new OutgoingRequestLoop({
      machine,
      send: (request) => sendOutgoingRequest(host.http, request),
      onError: (error, request) => this.#requestFailed(error, request),
      onRebuilt: (request) => this.#requestRebuilt(request),
      exclusive: (work) => lease.run(work),
    });
    this.#rooms = new RoomEncryption({
      machine,
      http: host.http,
      logger: host.logger,
      loop: this.#loop,
      reportError: (error) => host.reportError(error),
      membersFetched: (room, news) => host.membersFetched?.(room, news),
    });
    this.#trust = new DeviceTrustCalls({ machine, http: host.http, loop: this.#loop });
    this.backup = new KeyBackup({
      machine,
      http: host.http,
      logger: host.logger,
      getAccountData: (type) => host.getAccountData(type),
      setAccountData: (type, content) => host.setAccountData(type, content),
      emitRedecrypted: (events) => this.#emitRedecrypted(events),
      reportError: (error) => host.reportError(error),
      knownRooms: () => Array.from(host.rooms(), (room) => room.roomId),
      exclusive: (work) => lease.run(work),
    });
    this.dehydration = new DehydratedDevices({
      http: host.http,
      machine,
      clock: host.clock ?? systemClock,
      secretStorage: this.secretStorage,
      refreshOwnKeys: () => this.#trust.refreshOwnKeys(),
      flush: () => this.#loop.run(),
      emitRedecrypted: (events) => this.#emitRedecrypted(events),
      reportError: (error) => host.reportError(error),
      logger: host.logger,
      exclusive: (work) => lease.run(work),
    });
    const backup = this.backup;
    this.recovery = new Recovery({
      http: host.http,
      userId: machine.userId,
      machine,
      secretStorage: this.secretStorage,
      backup: {
        createVersion: () => backup.createVersion(),
        useKey: (key) => backup.useKey(key),
        status: () => backup.status(),
        privateKey: () => machine.backup.exportPrivateKey(),
        restore: (options) => backup.restore(options),
      },
      // Not the public call: resetIdentity moves dehydration once, with its new secret storage key.
      bootstrapCrossSigning: (options) => this.#bootstrapCrossSigning(options),
      crossSigningStatus: () => this.crossSigningStatus(),
      getUserIdentity: (userId) => this.getUserIdentity(userId),
      flush: () => this.#loop.run(),
      exclusive: (work) => lease.run(work),
      keysReplaced: (change) => this.#dehydrationKeysReplaced(change),
    });
    this.historySharing = new HistorySharing({
      machine,
      logger: host.logger,
      exclusive: (work) => lease.run(work),
      reportError: (error) => host.reportError(error),
      uploadMedia: (data) => host.uploadMedia(data),
      downloadMedia: (url, maxBytes) => host.downloadMedia(url, maxBytes),
      refreshDevices: async (userIds) => {
        await this.machine.updateTrackedUsers(userIds);
        await this.#trust.refreshDevices(userIds);
      },
      prepareRecipient: async (userId) => {
        await this.#trust.refreshDevices([userId]);
        await this.#rooms.claimSessions([userId]);
      },
      flush: () => this.#loop.run(),
      emitRedecrypted: (events) => this.#emitRedecrypted(events),
      restoreRoomFromBackup: async (roomId) => {
        const status = await this.backup.status({ check: false });
        if (status.version === undefined || !status.hasKey || !status.trusted) return false;
        await this.backup.restore({ roomId });
        return true;
      },
    });
    this.#syncs = new SyncProcessing({
      machine,
      host,
      store: store.store,
      rooms: this.#rooms,
      loop: this.#loop,
      backup: this.backup,
      historySharing: this.historySharing,
    });
  }

  /** Opens the engine on the store and sends what it has to (first login: device and one-time keys). */
  static async open(options: ClientCryptoOpenOptions): Promise<ClientCrypto> {
    const store = options.store.store;
    const clock = options.host.clock ?? systemClock;
    const lease = new LeaseKeeper(store, clock, `${options.userId}/${options.deviceId}`, options.lease);
    return lease.run(async () => {
      const machine = await OlmMachine.open({
        userId: options.userId,
        deviceId: options.deviceId,
        store,
        verifyDevices: options.verifyDevices ?? false,
        onlyVerifiedDevices: options.onlyVerifiedDevices ?? false,
        shareWith: options.shareWith ?? "all",
        senderRequirement: options.senderRequirement ?? "accept",
        errorOnVerifiedUserProblems: options.errorOnVerifiedUserProblems ?? false,
        // The engine's time (key-query and claim back-offs, session rotation, request expiry)
        // is the client's: a test that steps the client's clock steps these too.
        now: () => clock.now(),
      });
      const crypto = new ClientCrypto(machine, options.host, options.store, lease);
      if (options.clientSince === undefined)
        crypto.#syncs.startWithoutClientToken(await store.getNextBatch());
      await crypto.#loop.run();
      return crypto;
    });
  }

  /**
   * Runs `work` as one unit of work on the crypto store: under its lease, after reloading the
   * engine if another process or tab wrote since this one last held it. Units nest.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#lease.run(work);
  }

  /** Another process wrote: caches go; events here whose key it received are emitted (own unit). */
  async #reload(): Promise<void> {
    const later = await this.machine.reload();
    this.#rooms.reset();
    const report = (e: unknown) => this.#host.reportError(e);
    if (later.length > 0) this.exclusive(() => this.#emitRedecrypted(later)).catch(report);
    this.#host.logger.debug({}, "crypto store written by another process; reloaded");
  }

  get userId(): string {
    return this.machine.userId;
  }
  get deviceId(): string {
    return this.machine.deviceId;
  }

  /**
   * Whether the engine recorded the room as encrypted (then nothing the server sends turns it off).
   * Under the lease: another process sharing the store may have recorded it since this one last
   * held it, and the engine keeps what it read (a plaintext send must not follow a stale "no").
   */
  isRoomRecordedEncrypted(roomId: string): Promise<boolean> {
    return this.exclusive(async () => (await this.machine.getRoomSettings(roomId)) !== undefined);
  }

  /** Our device's Ed25519 key, for others to verify us out of band. */
  getFingerprint(): string {
    return this.machine.identityKeys.ed25519;
  }

  /** Sends everything the engine has queued; resolves when a full pass is done (never rejects). */
  flush(): Promise<void> {
    return this.#loop.run();
  }

  /** Before the first sync request: what `handleSyncUnit` compares to see if another process synced. */
  syncMark(): number {
    return this.#lease.reloads;
  }

  /**
   * Handles one sync response under the lease. When another process sharing the store may have
   * written since `mark` and the store's token is not `since` (that process handled a sync from
   * there), this response covers a range whose to-device messages were consumed there: only its
   * rooms are applied here (timeline events decrypt with the keys that process stored), and the
   * store's token is reported for the loop to sync on from. The mark returned is the reload count
   * now, under the same lease, when the position this unit leaves is the store's.
   */
  handleSyncUnit(
    since: string | undefined,
    mark: number | undefined,
    handle: (shared?: { position: string }) => Promise<void>,
  ): Promise<{ mark: number; moved?: string }> {
    return this.#lease.run(async () => {
      const now = this.#lease.reloads;
      if (now !== mark) {
        const position = await this.#store.store.getNextBatch();
        if (position !== undefined && position !== since) {
          await handle({ position });
          return { mark: now, moved: position };
        }
      }
      await handle();
      return { mark: now };
    });
  }

  // ---- SyncProcessor ----

  processSyncChanges(changes: SyncCryptoChanges): Promise<ToDeviceEvent[]> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      // Members may have come and gone unseen in a limited timeline's gap: fetched again.
      this.#rooms.membersMayHaveChanged(changes.limitedRooms ?? []);
      return this.#syncs.processChanges(changes, {
        deferVerification: this.#deferVerification.has(changes.nextBatch),
      });
    });
  }

  /**
   * The to-device verification events of the response whose `next_batch` is `nextBatch` are not
   * handed to the verification flow when it is processed (they are still emitted as `toDevice`,
   * decrypted): `receiveDeferredVerification` hands them over later. Returns what ends this, to
   * call once the response was handled. For `MatrixClient.feedSync`'s `deferVerification`.
   */
  deferVerificationOf(nextBatch: string): () => void {
    this.#deferVerification.add(nextBatch);
    return () => this.#deferVerification.delete(nextBatch);
  }

  /**
   * To-device verification events a response handled under `deferVerificationOf` emitted, handed
   * to the verification flow now, in order, as that response's processing would have (anything
   * else among them is left alone). Emitting them as `toDevice` afterwards lets the flow go on.
   */
  receiveDeferredVerification(events: readonly ToDeviceEvent[]): Promise<void> {
    return this.#openUnit(() =>
      this.machine.verification.receiveDeferredToDevice(events.map(processedToDeviceOf)),
    );
  }

  decryptRoomEvent(room: Room, event: ClientEvent): Promise<DecryptionResult> {
    return this.exclusive(() => decryptRoomEvent(this.#decryptionParts, room, event));
  }

  decryptRoomEvents(room: Room, events: readonly ClientEvent[]): Promise<DecryptionResult[]> {
    return this.exclusive(() => decryptRoomEvents(this.#decryptionParts, room, events));
  }

  decryptTimelines(timelines: readonly SyncTimeline[]): Promise<DecryptionResult[][]> {
    return this.exclusive(() => decryptTimelines(this.#decryptionParts, timelines));
  }

  get #decryptionParts(): RoomDecryptionParts {
    return {
      machine: this.machine,
      rooms: this.#rooms,
      loop: this.#loop,
      refusedVerification: this.#refusedVerification,
    };
  }

  /**
   * The verification event an `m.room.encrypted` event refused as `SENDER_NOT_CROSS_SIGNED` held
   * (see `refused-verification.ts`), handed out once, for the verification flow alone.
   */
  takeRefusedVerificationEvent(roomId: string, eventId: string): RefusedVerificationEvent | undefined {
    return this.#refusedVerification.take(roomId, eventId);
  }

  /**
   * After the sync's events went out: record newly encrypted rooms and track their members (their
   * state is applied by now), emit events whose key arrived, and send what the engine queued.
   */
  beforeSaveSyncToken(_nextBatch: string): Promise<void> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      await this.#syncs.afterEvents();
      this.#handOverLateVerification();
    });
  }

  // ---- EventEncryptor ----

  /** Encrypts one event (see `RoomEncryption.encrypt`), one room send at a time, under the lease. */
  encryptRoomEvent(
    room: Room,
    type: string,
    content: JsonObject,
  ): Promise<{ type: string; content: JsonObject }> {
    return this.#sends.run(() =>
      this.#lease.run(async () => {
        this.#ensureOpen();
        return this.#rooms.encrypt(room, type, content);
      }),
    );
  }

  /** Encrypts an in-room verification event (see `RoomEncryption.encryptVerification`). */
  encryptVerificationEvent(
    room: Room,
    type: string,
    content: JsonObject,
    partner: string,
  ): Promise<{ type: string; content: JsonObject }> {
    return this.#sends.run(() =>
      this.#lease.run(async () => {
        this.#ensureOpen();
        return this.#rooms.encryptVerification(room, type, content, partner);
      }),
    );
  }

  // ---- history sharing (MSC4268) ----

  /**
   * Before inviting `userId` to an encrypted room whose history is `shared` or `world_readable`:
   * sends them the bundle of its shareable keys. Undefined when the room does not allow it.
   */
  shareRoomHistory(room: Room, userId: string): Promise<SharedHistory | undefined> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      const visibility = historyVisibilityOf(room) ?? "shared";
      if (!room.encrypted || !(visibility === "shared" || visibility === "world_readable")) return undefined;
      return this.historySharing.share(room.roomId, userId);
    });
  }

  /**
   * We joined `roomId` on `inviter`'s invite: their key bundle is imported now or when it comes.
   * The engine steps run under the lease, the bundle's download outside it.
   */
  async inviteAccepted(roomId: string, inviter: string): Promise<void> {
    this.#ensureOpen();
    await this.historySharing.inviteAccepted(roomId, inviter);
  }

  // ---- devices and trust ----

  /**
   * The user's devices, without deleted ones: asked for first when outdated, or each time for a
   * user we share no encrypted room with (a one-off query: looking someone up does not start
   * following their device list).
   */
  getUserDevices(userId: string): Promise<DeviceInfo[]> {
    return this.#openUnit(() => this.#trust.getUserDevices(userId));
  }

  /**
   * Sets a device's local trust. Verifying one of our own devices also cross-signs it when we hold
   * our self-signing key (the signature is uploaded before this returns, or retried later).
   */
  setDeviceTrust(userId: string, deviceId: string, trust: DeviceTrust): Promise<DeviceInfo> {
    return this.#openUnit(() => this.#trust.setDeviceTrust(userId, deviceId, trust));
  }

  // ---- cross-signing ----

  /**
   * Creates our cross-signing identity and uploads it (`/keys/device_signing/upload`, answering
   * User-Interactive Auth with `auth`), then signs this device. Nothing is created when the
   * published identity is already ours, unless `reset` (which replaces an identity: others see it
   * change). Refuses (`CrossSigningError("IDENTITY_EXISTS")`) to replace an identity whose keys
   * this device does not hold, unless `reset`. After a `reset`, a running dehydration schedule
   * replaces its device at once with one signed by the new self-signing key.
   */
  async bootstrapCrossSigning(opts: { auth?: UiaAuth; reset?: boolean } = {}): Promise<CrossSigningStatus> {
    const status = await this.#bootstrapCrossSigning(opts);
    // A running dehydration schedule replaces its device, signed by the new self-signing key.
    if (opts.reset === true) await this.#dehydrationKeysReplaced({ identityReset: true });
    return status;
  }

  #bootstrapCrossSigning(opts: { auth?: UiaAuth; reset?: boolean }): Promise<CrossSigningStatus> {
    return this.#openUnit(async () => {
      await this.#trust.bootstrapCrossSigning(opts);
      return this.crossSigningStatus();
    });
  }

  /**
   * Global account data sync brought: a default secret storage key moved or removed (by another
   * login, or the echo of our own move) is followed by a running dehydration schedule
   * (`dehydration.defaultKeyMoved`), in the background, its failure reported.
   */
  accountDataChanged(event: BasicEvent): void {
    if (this.#closed || event.type !== DEFAULT_KEY_TYPE) return;
    const keyId = event.content.key;
    // Deleted (`{}`) or malformed: no default key (the schedule asks the server all the same).
    this.dehydration
      .defaultKeyMoved(typeof keyId === "string" ? keyId : undefined)
      .catch((e: unknown) => this.#host.reportError(e));
  }

  /** `dehydration.keysReplaced`, its failure reported (the keys were replaced all the same). */
  async #dehydrationKeysReplaced(change: {
    secretStorageKey?: UnlockedSecretStorageKey;
    identityReset?: boolean;
  }): Promise<void> {
    try {
      await this.dehydration.keysReplaced(change);
    } catch (e) {
      this.#host.reportError(e);
    }
  }

  /** Our cross-signing state (our published keys asked for again when outdated). */
  crossSigningStatus(): Promise<CrossSigningStatus> {
    return this.#openUnit(() => this.#trust.crossSigningStatus());
  }

  /** A user's cross-signing identity (their keys fetched first if needed), or undefined. */
  getUserIdentity(userId: string): Promise<UserIdentityInfo | undefined> {
    return this.#openUnit(() => this.#trust.getUserIdentity(userId));
  }

  /**
   * Asks the server for these users' devices and cross-signing keys again, whatever the cache
   * says. A syncing client learns of their changes from `device_lists`; one that does not sync
   * (a one-shot command) calls this before `getUserDevices` / `getUserIdentity`.
   */
  refreshUserKeys(userIds: readonly string[]): Promise<void> {
    return this.#openUnit(() => this.#trust.refreshKeys(userIds));
  }

  /**
   * Takes every tracked user's device list as outdated (their devices are asked for again, in the
   * next outgoing pass): for a client that may have missed `device_lists` changes without knowing
   * whose (an appservice user that came past the bound of what is held while it starts).
   */
  markAllDeviceListsOutdated(): Promise<void> {
    return this.#openUnit(() => this.machine.markAllTrackedOutdated());
  }

  /**
   * Verifies a user's current identity (after checking their master key, e.g. interactively):
   * pins it, and signs it with our user-signing key when we hold it. For our own user, trusts our
   * identity (and the devices it cross-signed). Pass the `masterKey` that was checked (from
   * `getUserIdentity`): their keys are fetched again first, and if the key changed in between,
   * `CrossSigningError("IDENTITY_CHANGED")` is thrown instead of verifying a key nobody checked.
   */
  verifyUser(userId: string, opts: { masterKey?: string } = {}): Promise<UserIdentityInfo> {
    return this.#openUnit(async () => {
      const info = await this.#trust.verifyUser(userId, opts);
      this.historySharing.identityDecided(); // a violation it clears lets waiting bundles in
      return info;
    });
  }

  /**
   * Accepts a user's changed identity (clears `changed` and a verification violation). Pass the
   * `masterKey` the person was shown: `CrossSigningError("IDENTITY_CHANGED")` if it changed again.
   */
  acceptIdentityChange(userId: string, opts: { masterKey?: string } = {}): Promise<UserIdentityInfo> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      const info = await this.machine.acceptIdentityChange(userId, opts);
      this.historySharing.identityDecided();
      return info;
    });
  }

  /** Withdraws a user's verification (clears a verification violation). */
  withdrawVerification(userId: string): Promise<UserIdentityInfo> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      const info = await this.machine.withdrawVerification(userId);
      this.historySharing.identityDecided();
      return info;
    });
  }

  /**
   * Trust requirements for one room (each overrides the client-wide option), persisted in the
   * crypto store so that they hold after a restart.
   */
  setRoomTrustRequirements(room: Room, requirements: RoomTrustRequirements): Promise<void> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      return this.#rooms.setTrustRequirements(room, requirements);
    });
  }

  /**
   * Our own devices with their keys and trust, asking the server again when it named a device the
   * engine has not seen (a device added while this one was offline, before any sync reported it).
   */
  getOwnDevices(serverDeviceIds: readonly string[]): Promise<DeviceInfo[]> {
    return this.#openUnit(() => this.#trust.getOwnDevices(serverDeviceIds));
  }

  /** Key requests of our own unverified devices, waiting for `setDeviceTrust` (oldest first). */
  getHeldKeyRequests(): HeldKeyRequest[] {
    this.#ensureOpen();
    return this.machine.heldKeyRequests();
  }

  /** Per-room `verifyDevices` (overrides the client-wide option); persisted. */
  setRoomVerifyDevices(room: Room, verifyDevices: boolean): Promise<void> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      return this.#rooms.setVerifyDevices(room, verifyDevices);
    });
  }

  // ---- key export / import ----

  /**
   * The room keys of these rooms, or every room key we hold when `roomIds` is undefined, as a
   * standard passphrase-protected export file (Element and matrix-js-sdk read it). `onProgress`
   * counts rooms, or sessions when exporting everything (read from the store a page at a time).
   */
  exportRoomKeys(
    roomIds: readonly string[] | undefined,
    passphrase: string,
    opts: { onProgress?: ProgressCallback; rounds?: number } = {},
  ): Promise<string> {
    this.#ensureOpen();
    return exportRoomKeyFile(this.machine, roomIds, passphrase, opts);
  }

  /**
   * Imports a key export file. Events that were waiting for these keys are decrypted and emitted
   * again (`room.decrypted`). `onProgress` counts keys.
   */
  async importRoomKeys(
    file: string,
    passphrase: string,
    opts: { onProgress?: ProgressCallback } = {},
  ): Promise<KeyImportResult> {
    this.#ensureOpen();
    // Opened before the store's lease is taken: the derivation may take seconds.
    const entries = await openRoomKeyFile(file, passphrase);
    return this.exclusive(async () => {
      this.#ensureOpen();
      const { imported, total, redecrypted } = await importRoomKeyEntries(this.machine, entries, opts);
      await this.#emitRedecrypted(redecrypted);
      return { imported, total };
    });
  }

  // ---- plumbing ----

  /** Emits events that failed to decrypt earlier, whole, now that their key arrived. */
  async #emitRedecrypted(decrypted: readonly DecryptedRoomEvent[]): Promise<void> {
    await emitLaterOutcomes(this.#host, { decrypted, withheld: [] });
    this.#handOverLateVerification();
  }

  /**
   * Refused senders' verification events the engine decrypted once their key came: held, and
   * their timeline events handed to the verification flow as when decrypted at once (see
   * `refused-verification.ts`); the application still sees them undecryptable.
   */
  #handOverLateVerification(): void {
    for (const d of this.machine.takeLateVerificationEvents()) {
      const event = refusedLaterEvent(d);
      if (event === undefined || this.#host.verificationEvent === undefined) continue;
      this.#refusedVerification.hold(d);
      this.#host.verificationEvent(event);
    }
  }

  #requestFailed(error: unknown, request: OutgoingRequest | undefined): void {
    // The request stays in the engine and goes out again on the next run; say what, never the body.
    this.#host.logger.warn({ request: request?.type, err: errorSummary(error) }, "encryption request failed");
    this.#host.reportError(error);
  }

  #requestRebuilt(request: OutgoingRequest): void {
    // Not the server's text: it quotes the keys.
    this.#host.logger.warn(
      { request: request.type },
      "keys upload refused for key IDs the server holds other keys under (a store restored from an older copy?): sent again with new keys",
    );
  }

  /** `work` as one unit of work (`exclusive`), refused once the driver is closed. */
  #openUnit<T>(work: () => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      return work();
    });
  }

  #ensureOpen(): void {
    if (this.#closed) throw new ClientCryptoError("CLOSED", "the client's encryption was closed");
  }

  /** Waits for the running requests, then closes the engine (and the store, if the client opened it). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopListening();
    this.dehydration.stop();
    await this.#loop.close();
    await this.backup.close();
    await this.historySharing.close();
    await this.#sends.run(async () => undefined);
    // Its last save (replay records) under the lease too; if the lease cannot be had, they are lost
    // as after a crash (see REPLAY_FLUSH_BATCH), and nothing else is.
    await this.#lease.run(() => this.machine.close()).catch(() => this.machine.close());
    if (this.#store.owned) await this.#store.store.close();
  }

  toJSON(): Record<string, unknown> {
    return { type: "ClientCrypto", userId: this.userId, deviceId: this.deviceId };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `ClientCrypto(${this.userId}/${this.deviceId})`;
  }
}
