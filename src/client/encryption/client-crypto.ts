// The client's encryption driver. It owns the `OlmMachine` and its store, feeds it each sync before
// the client emits anything or saves its token, sends what it asks for (one loop at a time), shares
// room keys before encrypting, decrypts timeline events and re-emits the ones whose key came late.
import { wipe } from "../../crypto/primitives/index.ts";
// Values straight from their files, not from the E2EE barrel: the barrel also leads to the parts
// loaded on first use (secret storage, recovery, dehydration), which a bundler splits off only
// when nothing loaded before them imports them statically.
import { E2eeError } from "../../e2ee/errors.ts";
import type {
  CrossSigningStatus,
  DecryptedRoomEvent,
  DeviceInfo,
  DeviceTrust,
  HeldKeyRequest,
  OutgoingRequest,
  ReceivedSecret,
  RoomEventDecryption,
  UndecryptableRoomEvent,
  UserIdentityInfo,
} from "../../e2ee/index.ts";
import { OlmMachine } from "../../e2ee/machine.ts";
import { BACKUP_SECRET, decodeKeySecret } from "../../e2ee/secret-storage/names.ts";
import {
  type ClientEvent,
  type JsonObject,
  jsonObjectSchema,
  keysChangesResponseSchema,
  type ToDeviceEvent,
} from "../../wire/index.ts";
import { systemClock } from "../clock.ts";
import { errorSummary } from "../events/emitter.ts";
import { path } from "../http.ts";
import type { Room } from "../rooms/room.ts";
import type { DecryptionResult, EventEncryptor, SyncCryptoChanges, SyncProcessor } from "../sync/hooks.ts";
import { type UiaAuth, withUia } from "../uia.ts";
import { KeyBackup } from "./backup.ts";
import type {
  ClientCryptoHost,
  ClientCryptoOpenOptions,
  KeyImportResult,
  ProgressCallback,
  RoomTrustRequirements,
} from "./client-crypto-types.ts";
import { decryptedParts, emitLaterOutcomes, undecryptable } from "./decrypted-events.ts";
import { DehydratedDevices } from "./dehydration.ts";
import { sendOutgoingRequest } from "./dispatch.ts";
import { ClientCryptoError } from "./errors.ts";
import { HistorySharing, type SharedHistory } from "./history-sharing.ts";
import { exportRoomKeyFile, importRoomKeyFile } from "./key-export-file.ts";
import { LeaseKeeper } from "./lease.ts";
import type { OpenedStore } from "./options.ts";
import { OutgoingRequestLoop, Serial } from "./outgoing.ts";
import { Recovery } from "./recovery.ts";
import { historyVisibilityOf, RoomEncryption } from "./room-encryption.ts";
import { SecretStorage } from "./secret-storage.ts";

export class ClientCrypto implements SyncProcessor, EventEncryptor {
  readonly machine: OlmMachine;
  /** Server-side key backup: create / use a version, status, restore; uploads run after each sync. */
  readonly backup: KeyBackup;
  readonly #host: ClientCryptoHost;
  readonly #store: OpenedStore;
  readonly #loop: OutgoingRequestLoop;
  /** Room sends run one at a time: each prepares the room's key, then encrypts. */
  readonly #sends = new Serial();
  /**
   * What this sync's engine step handed back for events that failed earlier (decrypted now, or
   * their key withheld): emitted after the sync's events, before its token is saved.
   */
  #later: { decrypted: DecryptedRoomEvent[]; withheld: UndecryptableRoomEvent[] } = {
    decrypted: [],
    withheld: [],
  };
  #changedRooms = new Set<string>();
  /** Each room's recorded encryption and trust, its member list, and the send that shares its key. */
  readonly #rooms: RoomEncryption;
  /** The crypto store's token when the client starts over without one (see `clientSince`). */
  #gapFrom: string | undefined;
  /**
   * The store never saw a sync: the first one is an initial sync, which carries no `device_lists`,
   * yet keys were queried at open (our own at least). Whatever changed in between (a device of
   * ours that logged in meanwhile) is asked for again once that sync is in.
   */
  #requeryAfterInitialSync = false;
  #closed = false;
  /** Secret storage (`m.secret_storage.*` account data): keys, and secrets encrypted with them. */
  readonly secretStorage: SecretStorage;
  /** Dehydrated devices (MSC3814): create, rehydrate on a new login, replace on a schedule. */
  readonly dehydration: DehydratedDevices;
  /** Recovery: one recovery key over secret storage, cross-signing and key backup. */
  readonly recovery: Recovery;
  /** Secrets our other devices sent on request (the backup key), applied before the token is saved. */
  #receivedSecrets: ReceivedSecret[] = [];
  /** History sharing on invite (MSC4268): key bundles sent to invitees and imported from inviters. */
  readonly historySharing: HistorySharing;
  /** A sync brought a room key bundle: the ready ones are imported before its token is saved. */
  #bundlesArrived = false;

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
    });
    this.#loop = new OutgoingRequestLoop({
      machine,
      send: (request) => sendOutgoingRequest(host.http, request),
      onError: (error, request) => this.#requestFailed(error, request),
      exclusive: (work) => lease.run(work),
    });
    this.#rooms = new RoomEncryption({
      machine,
      http: host.http,
      logger: host.logger,
      loop: this.#loop,
      reportError: (error) => host.reportError(error),
    });
    this.backup = new KeyBackup({
      machine,
      http: host.http,
      logger: host.logger,
      getAccountData: (type) => host.getAccountData(type),
      setAccountData: (type, content) => host.setAccountData(type, content),
      emitRedecrypted: (events) => this.#emitRedecrypted(events),
      reportError: (error) => host.reportError(error),
      exclusive: (work) => lease.run(work),
    });
    this.dehydration = new DehydratedDevices({
      http: host.http,
      machine,
      clock: host.clock ?? systemClock,
      secretStorage: this.secretStorage,
      refreshOwnKeys: () => this.#refreshOwnKeys(),
      flush: () => this.#loop.run(),
      emitRedecrypted: (events) => this.#emitRedecrypted(events),
      reportError: (error) => host.reportError(error),
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
      bootstrapCrossSigning: (options) => this.bootstrapCrossSigning(options),
      crossSigningStatus: () => this.crossSigningStatus(),
      getUserIdentity: (userId) => this.getUserIdentity(userId),
      flush: () => this.#loop.run(),
      exclusive: (work) => lease.run(work),
    });
    this.historySharing = new HistorySharing({
      machine,
      logger: host.logger,
      uploadMedia: (data) => host.uploadMedia(data),
      downloadMedia: (url, maxBytes) => host.downloadMedia(url, maxBytes),
      refreshDevices: async (userIds) => {
        await this.machine.updateTrackedUsers(userIds);
        await this.#refreshDevices(userIds);
      },
      prepareRecipient: async (userId) => {
        await this.#refreshDevices([userId]);
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
  }

  /** Opens the engine on the store and sends what it has to (first login: device and one-time keys). */
  static async open(options: ClientCryptoOpenOptions): Promise<ClientCrypto> {
    const store = options.store.store;
    const lease = new LeaseKeeper(
      store,
      options.host.clock ?? systemClock,
      `${options.userId}/${options.deviceId}`,
      options.lease,
    );
    return lease.run(async () => {
      const machine = await OlmMachine.open({
        userId: options.userId,
        deviceId: options.deviceId,
        store,
        verifyDevices: options.verifyDevices ?? false,
        onlyVerifiedDevices: options.onlyVerifiedDevices ?? false,
        shareWith: options.shareWith ?? "all",
        senderRequirement: options.senderRequirement ?? "accept",
      });
      const crypto = new ClientCrypto(machine, options.host, options.store, lease);
      if (options.clientSince === undefined) {
        crypto.#gapFrom = await store.getNextBatch();
        crypto.#requeryAfterInitialSync = crypto.#gapFrom === undefined;
      }
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
      if (changes.changedMemberships.length > 0) {
        await this.machine.receiveRoomMembership(changes.changedMemberships);
        for (const m of changes.changedMemberships) this.#changedRooms.add(m.roomId);
      }
      // Before the new token is saved: a crash here must not skip the missed range next time.
      if (this.#gapFrom !== undefined) await this.#catchUpDeviceLists(this.#gapFrom, changes.nextBatch);
      if (this.#requeryAfterInitialSync) {
        const tracked = (await this.#store.store.getTrackedUsers()).map((t) => t.userId);
        await this.machine.receiveKeysChanges([this.userId, ...tracked], []);
        this.#requeryAfterInitialSync = false;
      }
      // First contact in bulk: the devices of senders new to us are fetched now, in one batched
      // query, rather than one round trip (and one durable commit) per new sender while decrypting
      // (`#decryptRoomEvent`) — hundreds of them in a first sync of a large account. When every
      // sender is tracked with a current device list (a conversation's usual response) there is
      // nothing to fetch: no engine step and no outgoing pass (whatever else is queued goes out in
      // `beforeSaveSyncToken`'s pass of the same unit).
      if (this.machine.hasOutdatedUsers(changes.encryptedSenders)) {
        await this.machine.updateTrackedUsers(changes.encryptedSenders);
        await this.#loop.run();
      }
      const result = await this.machine.receiveSyncChanges({
        toDevice: changes.toDeviceEvents,
        deviceLists: changes.deviceLists,
        ...(changes.oneTimeKeyCounts !== undefined ? { oneTimeKeyCounts: changes.oneTimeKeyCounts } : {}),
        ...(changes.unusedFallbackKeyTypes !== undefined
          ? { unusedFallbackKeyTypes: changes.unusedFallbackKeyTypes }
          : {}),
        nextBatch: changes.nextBatch,
      });
      this.#later.decrypted.push(...result.redecrypted);
      this.#later.withheld.push(...result.withheldEvents);
      this.#receivedSecrets.push(...result.secrets);
      if (result.roomKeyBundles.length > 0) this.#bundlesArrived = true;
      for (const held of result.heldKeyRequests) this.#host.emitKeyRequest(held);
      for (const f of result.failures) {
        this.#host.logger.warn(
          { sender: f.sender, code: f.code },
          "dropped an undecryptable to-device event",
        );
      }
      // Rebuilt field by field: only events the engine decrypted carry `encryption` (a server cannot
      // forge it on a plaintext event), and room keys arrive without their `session_key`.
      return result.toDevice.map(({ type, sender, content, encryption }) =>
        encryption === undefined
          ? { type, sender, content }
          : { type, sender, content, encryption: { ...encryption } },
      );
    });
  }

  decryptRoomEvent(room: Room, event: ClientEvent): Promise<DecryptionResult> {
    return this.exclusive(() => this.#decryptRoomEvent(room, event));
  }

  decryptRoomEvents(room: Room, events: readonly ClientEvent[]): Promise<DecryptionResult[]> {
    return this.exclusive(() => this.#decryptRoomEvents(room, events));
  }

  /** `#decryptRoomEvent` for a room's timeline, in one engine step (and one more for first contacts). */
  async #decryptRoomEvents(room: Room, events: readonly ClientEvent[]): Promise<DecryptionResult[]> {
    try {
      const requirement = (await this.#rooms.trustOf(room.roomId)).senderRequirement;
      const opts = requirement === undefined ? {} : { senderRequirement: requirement };
      const batch = events.map((event) => ({ event, roomId: room.roomId }));
      const outcomes = await this.machine.tryDecryptRoomEvents(batch, opts);
      // First contact, as in `#decryptRoomEvent`: fetch the unknown senders' devices at once and
      // judge those events again.
      const unknown = outcomes.flatMap((o, i) => (o.ok && o.event.trust === "unknown_device" ? [i] : []));
      if (unknown.length > 0) {
        await this.machine.updateTrackedUsers([
          ...new Set(unknown.map((i) => (events[i] as ClientEvent).sender)),
        ]);
        await this.#loop.run();
        const again = await this.machine.tryDecryptRoomEvents(
          unknown.map((i) => batch[i] as (typeof batch)[number]),
          opts,
        );
        unknown.forEach((i, j) => {
          outcomes[i] = again[j] as RoomEventDecryption;
        });
      }
      return outcomes.map((o, i) =>
        o.ok ? { ok: true, ...decryptedParts(o.event, events[i] as ClientEvent) } : undecryptable(o.error),
      );
    } catch (e) {
      // The engine itself failed (closed, its store unusable): the events stay undecrypted.
      if (e instanceof E2eeError) return events.map(() => ({ ok: false, code: e.code, reason: e.message }));
      throw e;
    }
  }

  async #decryptRoomEvent(room: Room, event: ClientEvent): Promise<DecryptionResult> {
    try {
      const requirement = (await this.#rooms.trustOf(room.roomId)).senderRequirement;
      const opts = requirement === undefined ? {} : { senderRequirement: requirement };
      // The engine keeps the events whose key may still come and hands them back when it does.
      let outcome = await this.machine.tryDecryptRoomEvent(event, room.roomId, opts);
      if (outcome.ok && outcome.event.trust === "unknown_device") {
        // First contact: the sender's device keys may not be fetched yet (the query for a new room
        // member goes out after this sync's events). Fetch them now and judge the sender with them,
        // rather than report a device as unknown that is merely new to us.
        await this.machine.updateTrackedUsers([event.sender]);
        await this.#loop.run();
        outcome = await this.machine.tryDecryptRoomEvent(event, room.roomId, opts);
      }
      if (!outcome.ok) return undecryptable(outcome.error);
      return { ok: true, ...decryptedParts(outcome.event, event) };
    } catch (e) {
      // The engine itself failed (closed, its store unusable): the event stays undecrypted.
      if (e instanceof E2eeError) return { ok: false, code: e.code, reason: e.message };
      throw e;
    }
  }

  /**
   * After the sync's events went out: record newly encrypted rooms and track their members (their
   * state is applied by now), emit events whose key arrived, and send what the engine queued.
   */
  beforeSaveSyncToken(_nextBatch: string): Promise<void> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      const changed = this.#changedRooms;
      this.#changedRooms = new Set();
      for (const room of this.#host.rooms()) {
        const settingsChanged = this.#rooms.settingsChanged(room);
        if (!settingsChanged && !changed.has(room.roomId)) continue;
        if (!room.encrypted) continue;
        if (room.membership === "join") {
          if (changed.has(room.roomId) || settingsChanged)
            await this.#rooms.record(room, { fromSync: true, track: true });
        } else if (room.membership === "invite" && settingsChanged) {
          // Seen in the invite: recorded now, so that no later sync (which may omit it) can make us
          // send plaintext into the room after joining.
          await this.#rooms.record(room, { fromSync: true, track: false });
        }
      }
      const later = this.#later;
      this.#later = { decrypted: [], withheld: [] };
      await emitLaterOutcomes(this.#host, later);
      await this.#loop.run();
      await this.#useReceivedSecrets();
      if (this.#bundlesArrived || this.historySharing.retryDue) {
        this.#bundlesArrived = false;
        await this.historySharing.importReady();
      }
      // In the background: new room keys go up to the backup, missing ones are looked up in it.
      this.backup.schedule();
    });
  }

  /**
   * A backup key one of our verified devices sent on request: used with the server's version
   * (which refuses a key that is not its own). Other secrets have no use here yet and are dropped.
   */
  async #useReceivedSecrets(): Promise<void> {
    const secrets = this.#receivedSecrets;
    this.#receivedSecrets = [];
    for (const secret of secrets) {
      if (secret.name !== BACKUP_SECRET) continue;
      let key: Uint8Array;
      try {
        key = decodeKeySecret(secret.name, secret.value);
      } catch {
        continue;
      }
      try {
        await this.backup.useKey(key);
      } catch (e) {
        this.#host.logger.warn({ err: errorSummary(e) }, "the backup key another device sent was not used");
      } finally {
        wipe(key);
      }
    }
  }

  /**
   * Device-list changes missed while the client was away (an initial sync does not carry them).
   * If the server cannot say, every tracked user is queried again.
   */
  async #catchUpDeviceLists(from: string, to: string): Promise<void> {
    let changes: { changed: string[]; left: string[] };
    try {
      const res = await this.#host.http.request({
        method: "GET",
        path: path`/_matrix/client/v3/keys/changes`,
        query: { from, to },
        schema: keysChangesResponseSchema,
      });
      changes = { changed: res.changed ?? [], left: res.left ?? [] };
    } catch (e) {
      this.#host.logger.warn({ err: errorSummary(e) }, "keys/changes failed; querying every tracked user");
      const tracked = await this.#store.store.getTrackedUsers();
      changes = { changed: tracked.map((t) => t.userId), left: [] };
    }
    await this.machine.receiveKeysChanges(changes.changed, changes.left);
    // Only once recorded: if saving failed, the sync is handled again and so is the catch-up.
    this.#gapFrom = undefined;
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

  /** We joined `roomId` on `inviter`'s invite: their key bundle is imported now or when it comes. */
  inviteAccepted(roomId: string, inviter: string): Promise<void> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      return this.historySharing.inviteAccepted(roomId, inviter);
    });
  }

  // ---- devices and trust ----

  /** The user's devices (their keys fetched first if we do not follow them yet), without deleted ones. */
  getUserDevices(userId: string): Promise<DeviceInfo[]> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      await this.#refreshDevices([userId]);
      return (await this.machine.getUserDevices(userId)).filter((d) => !d.deleted);
    });
  }

  /**
   * Sets a device's local trust. Verifying one of our own devices also cross-signs it when we hold
   * our self-signing key (the signature is uploaded before this returns, or retried later).
   */
  setDeviceTrust(userId: string, deviceId: string, trust: DeviceTrust): Promise<DeviceInfo> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      if ((await this.machine.getDevice(userId, deviceId)) === undefined) {
        // A device we have not seen (e.g. just logged in): ask the server again rather than refuse.
        await this.machine.receiveKeysChanges([userId], []);
        await this.#refreshDevices([userId]);
      }
      const info =
        trust === "verified"
          ? (await this.machine.markDeviceVerified(userId, deviceId)).device
          : await this.machine.setDeviceTrust(userId, deviceId, trust);
      // Verifying one of our devices answers its held key requests (and uploads its signature): send them now.
      if (userId === this.userId) await this.#loop.run();
      return info;
    });
  }

  // ---- cross-signing ----

  /**
   * Creates our cross-signing identity and uploads it (`/keys/device_signing/upload`, answering
   * User-Interactive Auth with `auth`), then signs this device. Nothing is created when the
   * published identity is already ours, unless `reset` (which replaces an identity: others see it
   * change). Refuses (`CrossSigningError("IDENTITY_EXISTS")`) to replace an identity whose keys
   * this device does not hold, unless `reset`.
   */
  bootstrapCrossSigning(opts: { auth?: UiaAuth; reset?: boolean } = {}): Promise<CrossSigningStatus> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      await this.#refreshOwnKeys();
      const request = await this.machine.bootstrapCrossSigning({ reset: opts.reset === true });
      if (request !== undefined) {
        await withUia(this.userId, opts.auth, "upload cross-signing keys", (auth) =>
          this.#host.http.request({
            method: "POST",
            path: path`/_matrix/client/v3/keys/device_signing/upload`,
            body: { ...request.body, ...(auth !== undefined ? { auth } : {}) },
            schema: jsonObjectSchema,
          }),
        );
        await this.machine.markRequestAsSent(request, {});
      }
      await this.#loop.run();
      return this.crossSigningStatus();
    });
  }

  /** Our cross-signing state (our published keys asked for again when outdated). */
  crossSigningStatus(): Promise<CrossSigningStatus> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      await this.#refreshDevices([this.userId]);
      return this.machine.crossSigningStatus();
    });
  }

  /** A user's cross-signing identity (their keys fetched first if needed), or undefined. */
  getUserIdentity(userId: string): Promise<UserIdentityInfo | undefined> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      await this.#refreshDevices([userId]);
      return this.machine.getUserIdentity(userId);
    });
  }

  /**
   * Verifies a user's current identity (after checking their master key, e.g. interactively):
   * pins it, and signs it with our user-signing key when we hold it. For our own user, trusts our
   * identity (and the devices it cross-signed).
   */
  verifyUser(userId: string): Promise<UserIdentityInfo> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      await this.#refreshDevices([userId]);
      const { identity } = await this.machine.markUserVerified(userId);
      await this.#loop.run();
      return identity;
    });
  }

  /** Accepts a user's changed identity (clears `changed` and a verification violation). */
  acceptIdentityChange(userId: string): Promise<UserIdentityInfo> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      return this.machine.acceptIdentityChange(userId);
    });
  }

  /** Withdraws a user's verification (clears a verification violation). */
  withdrawVerification(userId: string): Promise<UserIdentityInfo> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      return this.machine.withdrawVerification(userId);
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

  /** Our own keys asked for again, whatever the cache says (another device may have changed them). */
  async #refreshOwnKeys(): Promise<void> {
    await this.machine.receiveKeysChanges([this.userId], []);
    await this.#refreshDevices([this.userId]);
  }

  /**
   * Our own devices with their keys and trust, asking the server again when it named a device the
   * engine has not seen (a device added while this one was offline, before any sync reported it).
   */
  getOwnDevices(serverDeviceIds: readonly string[]): Promise<DeviceInfo[]> {
    return this.exclusive(async () => {
      this.#ensureOpen();
      const known = async () => (await this.machine.getUserDevices(this.userId)).filter((d) => !d.deleted);
      let devices = await known();
      const missing = serverDeviceIds.some(
        (id) => id !== this.deviceId && !devices.some((d) => d.deviceId === id),
      );
      if (missing) {
        await this.machine.receiveKeysChanges([this.userId], []);
        await this.#refreshDevices([this.userId]);
        devices = await known();
      }
      return devices;
    });
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

  /** Makes sure these users' device lists are known and current (a `/keys/query` if needed). */
  async #refreshDevices(userIds: readonly string[]): Promise<void> {
    if (!this.machine.hasOutdatedUsers(userIds)) return;
    await this.machine.updateTrackedUsers(userIds);
    // Two runs: the first may have started before these users were marked.
    for (let i = 0; i < 2 && this.machine.hasOutdatedUsers(userIds); i++) await this.#loop.run();
    if (this.machine.hasOutdatedUsers(userIds)) {
      throw new ClientCryptoError(
        "DEVICE_LIST_UNAVAILABLE",
        "the devices of the room's members could not be fetched",
        { cause: this.#loop.lastError },
      );
    }
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
  importRoomKeys(
    file: string,
    passphrase: string,
    opts: { onProgress?: ProgressCallback } = {},
  ): Promise<KeyImportResult> {
    return this.exclusive(() => this.#importRoomKeys(file, passphrase, opts));
  }

  async #importRoomKeys(
    file: string,
    passphrase: string,
    opts: { onProgress?: ProgressCallback } = {},
  ): Promise<KeyImportResult> {
    this.#ensureOpen();
    const { imported, total, redecrypted } = await importRoomKeyFile(this.machine, file, passphrase, opts);
    await this.#emitRedecrypted(redecrypted);
    return { imported, total };
  }

  // ---- plumbing ----

  /** Emits events that failed to decrypt earlier, whole, now that their key arrived. */
  #emitRedecrypted(decrypted: readonly DecryptedRoomEvent[]): Promise<void> {
    return emitLaterOutcomes(this.#host, { decrypted, withheld: [] });
  }

  #requestFailed(error: unknown, request: OutgoingRequest | undefined): void {
    // The request stays in the engine and goes out again on the next run; say what, never the body.
    this.#host.logger.warn({ request: request?.type, err: errorSummary(error) }, "encryption request failed");
    this.#host.reportError(error);
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
