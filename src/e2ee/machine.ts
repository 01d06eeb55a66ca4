/**
 * `OlmMachine`: Keyroom's sans-I/O end-to-end encryption engine. The client pushes sync data in
 * (`receiveSyncChanges`), pulls requests out (`outgoingRequests`), sends them and hands back the
 * responses (`markRequestAsSent`). Every step ends with one transactional `saveChanges`, which
 * also carries the sync token, so a crash loses nothing and never reuses a one-time key.
 *
 * Steps run one at a time (an internal queue, `machine-steps.ts`), whatever the caller does
 * concurrently. This class is the public API: each method runs one step over the parts, its work
 * in a part or a companion module (`machine-*.ts`, `sync/changes.ts`).
 */

import type { ExportedRoomKey } from "../crypto/key-export/index.ts";
import type { IdentityKeys } from "../crypto/olm/index.ts";
import { isEmptyChanges } from "../store/changes.ts";
import { KeyBackupApi } from "./backup/api.ts";
import { entryOf } from "./collections.ts";
import type { UserIdentityInfo } from "./cross-signing/identity.ts";
import type { CrossSigningStatus } from "./cross-signing/manager.ts";
import { OwnEchoes } from "./decryption/own-echoes.ts";
import { PendingEvents } from "./decryption/pending.ts";
import { keysStoredElsewhere } from "./decryption/redecrypt.ts";
import { ReplayGuard } from "./decryption/replay.ts";
import type {
  DecryptedRoomEvent,
  EncryptedRoomEvent,
  RoomEventDecryption,
  RoomEventToDecrypt,
  SenderRequirement,
} from "./decryption/room-events.ts";
import { DehydrationApi } from "./dehydration/api.ts";
import type { DeviceInfo } from "./devices/device.ts";
import { E2eeError } from "./errors.ts";
import { HistorySharingApi } from "./history-sharing/api.ts";
import type { RequestFailure, RequestFailureOutcome } from "./identity/upload-conflict.ts";
import { type HeldKeyRequest, HeldKeyRequests } from "./key-requests/held.ts";
import { emptyChanges, type MachineContext, type MachineStore } from "./machine-context.ts";
import { decryptBatch, decryptOne } from "./machine-decryption.ts";
import {
  getDevice,
  getUserDevices,
  getUserIdentity,
  hasOutdatedUsers,
  markDeviceVerified,
  setDeviceTrust,
  trackRoomMembers,
} from "./machine-devices.ts";
import { buildParts, type Kept, type Parts } from "./machine-parts.ts";
import { MachineRequests } from "./machine-requests.ts";
import { MachineSteps } from "./machine-steps.ts";
import type {
  KeysClaimRequest,
  KeysQueryRequest,
  OutgoingRequest,
  SignatureUploadRequest,
  SigningKeysUploadRequest,
  ToDeviceRequest,
} from "./requests.ts";
import {
  planRoomEvent,
  planVerificationEvent,
  type RoomEventPlan,
  type RoomEventRecipients,
} from "./room-keys/send.ts";
import type {
  RoomEncryptionSettings,
  RoomMember,
  SettingsDefaults,
  ShareWith,
} from "./room-keys/settings.ts";
import { exportAllRoomKeys, exportRoomKeys, importRoomKeys } from "./room-keys/transfer.ts";
import { newSecretGossipState } from "./secret-storage/gossip.ts";
import { receiveSyncChanges } from "./sync/changes.ts";
import type { SyncChanges, SyncChangesResult } from "./sync/to-device.ts";
import { queueEncryptedToDevice } from "./to-device-queue.ts";
import { type DeviceTrust, isDeviceTrust } from "./trust/trust.ts";
import { VerificationApi } from "./verification/api.ts";
import { VerificationBridge } from "./verification/bridge.ts";

export interface OlmMachineOptions {
  readonly userId: string;
  readonly deviceId: string;
  /** A Keyroom `CryptoStore` (memory, SQLite, IndexedDB, your own): the machine uses the `MachineStore` part. */
  readonly store: MachineStore;
  /** Client-wide default: refuse to send to rooms with devices whose trust is unset. */
  readonly verifyDevices?: boolean;
  /** Client-wide default: share room keys only with devices marked verified (`shareWith: "verified"`). */
  readonly onlyVerifiedDevices?: boolean;
  /** Client-wide default: which devices get room keys (default `"all"`); see `ShareWith`. */
  readonly shareWith?: ShareWith;
  /** Client-wide default for events from devices not cross-signed: `"accept"` (marked) or `"refuse"`. */
  readonly senderRequirement?: SenderRequirement;
  /**
   * Client-wide default: refuse to share a room key (`VerifiedUserProblemError`) while a user we
   * verified changed identity or has a device their identity did not sign.
   */
  readonly errorOnVerifiedUserProblems?: boolean;
  /** Clock (ms since the epoch); tests inject one. */
  readonly now?: () => number;
}

export class OlmMachine {
  readonly #ctx: MachineContext;
  readonly #defaults: SettingsDefaults & { senderRequirement: SenderRequirement };
  readonly #pending = new PendingEvents();
  /** Memory-only state that outlives a rebuild of the parts. */
  readonly #kept: Kept;
  /** The keys upload, device queries, claims and queued messages; responses routed back. */
  readonly #requests: MachineRequests;
  /** Runs the steps, one at a time, and holds the current parts. */
  readonly #steps: MachineSteps;
  /** Interactive verification (SAS, QR): requests, user actions, updates. */
  readonly verification: VerificationApi;
  /** Server-side key backup: versions, uploads, restore, on-demand lookups. */
  readonly backup: KeyBackupApi;
  /** Dehydrated devices (MSC3814): create one, import what a rehydrated one received. */
  readonly dehydration: DehydrationApi;
  /** History sharing on invite (MSC4268): key bundles built, sent, remembered and imported. */
  readonly historySharing: HistorySharingApi;
  /** Verification flows live in memory only: a restart ends them (the spec's flows are short-lived). */
  readonly #bridge = new VerificationBridge();

  private constructor(
    ctx: MachineContext,
    parts: Parts,
    kept: Kept,
    defaults: SettingsDefaults & { senderRequirement: SenderRequirement },
  ) {
    this.#ctx = ctx;
    this.#kept = kept;
    this.#defaults = defaults;
    this.verification = new VerificationApi(ctx, this.#bridge, (fn) => this.#step(fn));
    this.#requests = new MachineRequests(ctx, this.#bridge, (p) => this.verification.keysUpdated(p));
    this.#steps = new MachineSteps(ctx, parts, kept, this.#requests);
    this.backup = new KeyBackupApi(
      (fn) => this.#step(fn),
      this.#pending,
      () => this.#steps.parts,
    );
    this.dehydration = new DehydrationApi(ctx, (fn) => this.#step(fn), this.#pending);
    this.historySharing = new HistorySharingApi(
      ctx,
      (fn) => this.#step(fn),
      (keys) => this.importRoomKeys(keys),
    );
  }

  static async open(options: OlmMachineOptions): Promise<OlmMachine> {
    if (!options.userId.startsWith("@") || options.deviceId === "") {
      throw new E2eeError("BAD_ARGUMENT", "userId must be a Matrix user ID and deviceId non-empty");
    }
    const now = options.now ?? Date.now;
    const ctx: MachineContext = {
      userId: options.userId,
      deviceId: options.deviceId,
      store: options.store,
      now,
      tx: emptyChanges(),
    };
    const defaults = {
      verifyDevices: options.verifyDevices ?? false,
      onlyVerifiedDevices: options.onlyVerifiedDevices ?? false,
      shareWith: options.shareWith ?? "all",
      senderRequirement: options.senderRequirement ?? "accept",
      errorOnVerifiedUserProblems: options.errorOnVerifiedUserProblems ?? false,
    } as const;
    const kept: Kept = {
      replays: new ReplayGuard(),
      ownEchoes: new OwnEchoes(),
      heldKeyRequests: new HeldKeyRequests(),
      signatureUploads: new Map(),
      secretGossip: newSecretGossipState(),
      settingsDefaults: defaults,
    };
    const parts = await buildParts(ctx, kept);
    // Our own user is always tracked: our other devices share and request keys with us.
    parts.devices.trackUsers([ctx.userId]);
    // ... and queried once per start: it tells us whether the server still has our own keys.
    parts.devices.markOutdated([ctx.userId]);
    if (!isEmptyChanges(ctx.tx)) await ctx.store.saveChanges(ctx.tx);
    ctx.tx = emptyChanges();
    return new OlmMachine(ctx, parts, kept, defaults);
  }

  /** One step over the current parts (see `MachineSteps.run`). */
  #step<T>(fn: (parts: Parts) => T | Promise<T>): Promise<T> {
    return this.#steps.run(fn);
  }

  get userId(): string {
    return this.#ctx.userId;
  }

  get deviceId(): string {
    return this.#ctx.deviceId;
  }

  get identityKeys(): IdentityKeys {
    return this.#steps.parts.own.identityKeys;
  }

  /**
   * Another process (or tab) wrote to the store since this machine last read it — the client
   * learns that when it takes the store's lease (`StoreLease`). Drops everything read from the
   * store and reads it again: the account and its one-time keys, Olm sessions, inbound and
   * outbound Megolm sessions (with their message counters and sharing), device lists and tracked
   * users, cross-signing identities and keys, key requests, queued to-device messages, and which
   * replay records are complete. The keys upload built from the old account is dropped (the next
   * `outgoingRequests` builds it from the stored one). Memory-only state stays: verification
   * flows, events waiting for their key, key requests held for verification, claim back-off,
   * unsaved replay records. Resolves with the events waiting here whose key the other process
   * stored, decrypted now (as `receiveSyncChanges` hands back `redecrypted`).
   */
  reload(): Promise<DecryptedRoomEvent[]> {
    return this.#step(async () => {
      const p = await this.#steps.reread();
      const redecrypted: DecryptedRoomEvent[] = [];
      if (this.#pending.size > 0) await keysStoredElsewhere(p, this.#pending, redecrypted);
      return redecrypted;
    });
  }

  /** Saves what is still unsaved and stops accepting steps. */
  close(): Promise<void> {
    return this.#steps.close();
  }

  // ---- sync ----

  receiveSyncChanges(changes: SyncChanges): Promise<SyncChangesResult> {
    return this.#step((p) => receiveSyncChanges(this.#ctx, p, this.#pending, this.verification, changes));
  }

  /** The answer of `GET /keys/changes` after a gap in syncing: handled like `device_lists`. */
  receiveKeysChanges(changed: readonly string[], left: readonly string[]): Promise<void> {
    return this.#step(async (p) => {
      p.devices.markOutdated(changed);
      p.devices.stopTracking(left);
    });
  }

  /**
   * Some device-list changes were lost and which users they were for is not known (an appservice
   * user held more while it started than it keeps): every tracked user's list is taken as
   * outdated, and queried again as a `device_lists.changed` would have it.
   */
  markAllTrackedOutdated(): Promise<void> {
    return this.#step(async (p) => {
      p.devices.markAllOutdated();
    });
  }

  // ---- requests ----

  /**
   * Everything to send now: a keys upload, device queries, key claims for unwedging and key
   * forwarding, and queued to-device messages. Requests not yet marked sent are offered again
   * (with the same ID and body), so a lost response is repaired by sending them again.
   */
  outgoingRequests(): Promise<OutgoingRequest[]> {
    return this.#step((p) => this.#requests.outgoing(p));
  }

  /**
   * Hands back the parsed JSON response body of a request from `outgoingRequests` (or a room send,
   * share, claim or cross-signing bootstrap). Routed by the request's `type`; each kind's response
   * is validated against its wire schema before the part that made the request sees it.
   */
  markRequestAsSent(
    request: Pick<OutgoingRequest | SigningKeysUploadRequest, "id" | "type">,
    response: unknown,
  ): Promise<void> {
    return this.#step((p) => this.#requests.receive(p, request, response));
  }

  /**
   * Hands back an error answer (a non-2xx status and its JSON body) to a request from
   * `outgoingRequests`. Most failures change nothing (`"unchanged"`: the request goes out again
   * later, as it is). One is repaired: a keys upload the server refuses because it holds other
   * keys under the IDs of ours (this device's store was restored from an older copy): the refused
   * keys are replaced by new ones with later IDs and the upload rebuilt (`"rebuilt"`: send
   * `outgoingRequests()` again now). After `MAX_KEY_UPLOAD_CONFLICTS` such refusals in a row it
   * throws `E2eeError("KEY_UPLOAD_CONFLICT")` and holds the upload back for
   * `KEY_UPLOAD_CONFLICT_BACKOFF_MS`.
   */
  markRequestAsFailed(
    request: Pick<OutgoingRequest, "id" | "type">,
    failure: RequestFailure,
  ): Promise<RequestFailureOutcome> {
    return this.#step(async (p) => this.#requests.failed(p, request, failure));
  }

  // ---- devices ----

  /** Starts tracking users who share an encrypted room with us (joins and invites). */
  updateTrackedUsers(userIds: Iterable<string>): Promise<void> {
    const ids = [...userIds];
    return this.#step(async (p) => p.devices.trackUsers(ids));
  }

  /**
   * Membership changes from sync. Joins and invites in rooms recorded as encrypted (see
   * `setRoomSettings`) start tracking the user; any other membership (a leave, a kick, a ban)
   * discards the room's outbound session, so the next share rotates it (spec v1.19: the user may
   * hold it through another member's history bundle). `device_lists.left` stops the tracking.
   */
  receiveRoomMembership(
    changes: readonly { roomId: string; userId: string; membership: string }[],
  ): Promise<void> {
    return this.#step((p) => trackRoomMembers(p, changes));
  }

  /** Whether any of these users' device lists still need a `/keys/query`. */
  hasOutdatedUsers(userIds: Iterable<string>): boolean {
    return hasOutdatedUsers(this.#steps.parts.devices, userIds);
  }

  /** Whether we follow this user's device list (we share an encrypted room, or they sent to us). */
  isTracked(userId: string): boolean {
    return this.#steps.parts.devices.isTracked(userId);
  }

  /**
   * One-off `/keys/query` requests for those of these users we do not track (a lookup by the
   * application: `getUserDevices`, `getUserIdentity`, a verification): send them and hand the
   * answers back with `markRequestAsSent`. Their devices and identity are stored, but they are
   * not tracked (`outgoingRequests` does not offer these requests either): the tracked users do
   * not grow with every user looked up. At most `MAX_LOOKUPS_IN_FLIGHT` are held at once.
   */
  queryKeysForUsers(userIds: Iterable<string>): Promise<KeysQueryRequest[]> {
    const ids = [...userIds];
    return this.#step((p) => p.devices.lookUp(ids));
  }

  getUserDevices(userId: string): Promise<DeviceInfo[]> {
    return this.#step((p) => getUserDevices(p, userId));
  }

  getDevice(userId: string, deviceId: string): Promise<DeviceInfo | undefined> {
    return this.#step((p) => getDevice(p, userId, deviceId));
  }

  /**
   * Marks a device verified, blacklisted, ignored or unset. A blacklisted device loses access to
   * future messages: rooms whose session it held rotate at their next share.
   */
  setDeviceTrust(userId: string, deviceId: string, trust: DeviceTrust): Promise<DeviceInfo> {
    if (!isDeviceTrust(trust)) return Promise.reject(new E2eeError("BAD_ARGUMENT", "unknown trust state"));
    return this.#step((p) => setDeviceTrust(p, userId, deviceId, trust));
  }

  // ---- cross-signing ----

  /** Our own cross-signing state: published master key, private keys held, trust. */
  crossSigningStatus(): Promise<CrossSigningStatus> {
    return this.#step(async (p) => p.crossSigning.status());
  }

  /**
   * Creates cross-signing keys (persisted now) and returns the `/keys/device_signing/upload`
   * request to send, with User-Interactive Auth as the server asks; mark it sent with
   * `markRequestAsSent`, then send `outgoingRequests()` (our device's signature). Undefined when
   * our published identity is already ours (unless `reset`). Throws
   * `CrossSigningError("IDENTITY_EXISTS")` if the account has an identity we do not hold all
   * three keys of (its master key alone included) and `reset` is not set. Query our own keys first so the published identity is known.
   */
  bootstrapCrossSigning(options: { reset?: boolean } = {}): Promise<SigningKeysUploadRequest | undefined> {
    return this.#step(async (p) => p.crossSigning.bootstrap(options.reset === true));
  }

  /** A user's cross-signing identity as we know it (ourselves included), or undefined. */
  getUserIdentity(userId: string): Promise<UserIdentityInfo | undefined> {
    return this.#step((p) => getUserIdentity(p, userId));
  }

  /**
   * A device was verified (an interactive verification succeeded, or the app says so): marks it
   * verified and, for one of our own devices when we hold our self-signing key, returns the
   * signature upload (also offered by `outgoingRequests()` until marked sent).
   */
  markDeviceVerified(
    userId: string,
    deviceId: string,
  ): Promise<{ device: DeviceInfo; request: SignatureUploadRequest | undefined }> {
    return this.#step((p) => markDeviceVerified(p, userId, deviceId));
  }

  /**
   * A user's identity was verified (their master key checked interactively, or the app says
   * so): pins and verifies their current master key and, for another user when we hold our
   * user-signing key, returns the signature upload of their master key (also offered by
   * `outgoingRequests()`). For our own user it makes our identity, and every own device it
   * cross-signed, trusted. Throws `CrossSigningError("NO_IDENTITY")` if we know no identity, and
   * `IDENTITY_CHANGED` if `opts.masterKey` (the key the user checked) is no longer theirs.
   */
  markUserVerified(
    userId: string,
    opts: { masterKey?: string } = {},
  ): Promise<{ identity: UserIdentityInfo; request: SignatureUploadRequest | undefined }> {
    return this.#step(async (p) => p.crossSigning.verifyUser(userId, opts.masterKey));
  }

  /**
   * Accepts a user's changed identity: it becomes the pinned one (clears `changed` and a
   * violation). With `opts.masterKey` (the key the person accepted), `IDENTITY_CHANGED` if it is
   * no longer theirs.
   */
  acceptIdentityChange(userId: string, opts: { masterKey?: string } = {}): Promise<UserIdentityInfo> {
    return this.#step(async (p) => p.crossSigning.acceptIdentity(userId, opts.masterKey));
  }

  /** Withdraws a user's verification (clears a violation; the user is no longer locally verified). */
  withdrawVerification(userId: string): Promise<UserIdentityInfo> {
    return this.#step(async (p) => p.crossSigning.withdrawVerification(userId));
  }

  /**
   * Our cross-signing private keys learnt elsewhere (secret storage, another own device), as
   * unpadded base64 seeds; each must match our published key (`CrossSigningError("KEY_MISMATCH")`).
   */
  importCrossSigningKeys(keys: {
    master?: string;
    selfSigning?: string;
    userSigning?: string;
  }): Promise<string[]> {
    return this.#step(async (p) => p.crossSigning.importPrivateKeys(keys));
  }

  /** Our cross-signing private keys as unpadded base64 seeds (for secret storage or secret sharing). */
  exportCrossSigningKeys(): Promise<{ master?: string; selfSigning?: string; userSigning?: string }> {
    return this.#step(async (p) => p.crossSigning.exportPrivateKeys());
  }

  /**
   * Asks our other devices (`m.secret.request`) for `names`, by default every secret of
   * `GOSSIPED_SECRETS` we lack (the cross-signing keys, the backup key). Only our own verified
   * devices answer, over Olm; the answers arrive with a later sync (cross-signing keys imported,
   * others in `SyncChangesResult.secrets`). Also done on its own when one of our other devices is
   * verified interactively. Returns the names asked for.
   */
  requestSecrets(names?: readonly string[]): Promise<string[]> {
    return this.#step(async (p) => p.secrets.request(names ?? (await p.secrets.missing())));
  }

  /**
   * Key requests of our own devices that are not verified, held until `setDeviceTrust` verifies
   * the device or a `/keys/query` answer shows it cross-signed by our trusted identity (then
   * answered), or `setDeviceTrust` blacklists it (then dropped). Oldest first.
   */
  heldKeyRequests(): HeldKeyRequest[] {
    return this.#kept.heldKeyRequests.list();
  }

  // ---- Olm sessions ----

  /**
   * A `/keys/claim` for the devices of these users we have no Olm session with, or undefined.
   * Call after their device lists are up to date and before `shareRoomKey`.
   */
  getMissingSessions(userIds: Iterable<string>): Promise<KeysClaimRequest | undefined> {
    const ids = [...new Set(userIds)];
    return this.#step(async (p) =>
      p.olm.claimRequest(await p.olm.devicesNeedingSessions(await this.#requests.claimable(p, ids))),
    );
  }

  /**
   * Encrypts one event for each of these devices over Olm (sessions must exist: see
   * `getMissingSessions`). Returns the to-device request, also queued in `outgoingRequests()`;
   * devices we have no session with are listed in `skipped`.
   */
  encryptToDevice(
    eventType: string,
    recipients: readonly { userId: string; deviceId: string }[],
    content: Record<string, unknown>,
  ): Promise<{ request: ToDeviceRequest | undefined; skipped: { userId: string; deviceId: string }[] }> {
    return this.#step(async (p) => {
      const messages: ToDeviceRequest["body"]["messages"] = {};
      const skipped: { userId: string; deviceId: string }[] = [];
      for (const { userId, deviceId } of recipients) {
        const device = await p.devices.device(userId, deviceId);
        const encrypted =
          device && !device.deleted ? await p.olm.encrypt(device, eventType, content) : undefined;
        if (encrypted === undefined) skipped.push({ userId, deviceId });
        else entryOf(messages, userId)[deviceId] = { ...encrypted };
      }
      if (Object.keys(messages).length === 0) return { request: undefined, skipped };
      return { request: queueEncryptedToDevice(this.#ctx, messages), skipped };
    });
  }

  // ---- rooms ----

  /**
   * Shares the room's Megolm session with every device that should have it and does not yet,
   * rotating it first if needed. Throws `UnknownDevicesError` under `verifyDevices` when any
   * recipient device's trust is unset, and `VerifiedUserProblemError` under
   * `errorOnVerifiedUserProblems` when a verified member changed identity or has a device their
   * identity did not sign. Returns the to-device requests to send.
   */
  shareRoomKey(
    roomId: string,
    members: readonly RoomMember[],
    settings: RoomEncryptionSettings = {},
  ): Promise<ToDeviceRequest[]> {
    return this.#step(async (p) => {
      const { requests } = await p.outbound.share(
        roomId,
        members,
        await p.roomSettings.forSend(roomId, settings, this.#defaults),
      );
      return requests;
    });
  }

  /**
   * One encrypted room send, in one step: the room's settings read once, then the first thing
   * missing — device lists of members (`"devices"`: queries), Olm sessions with their devices
   * (`"sessions"`: claims, unless `claimSessions` is false), or neither (`"ready"`: the room key
   * shared with every device that should hold it and does not, and the event encrypted). In steady
   * state that is one call with no requests. Throws `UnknownDevicesError` under `verifyDevices`,
   * `VerifiedUserProblemError` under `errorOnVerifiedUserProblems` (as `shareRoomKey`).
   */
  prepareRoomEvent(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    recipients: RoomEventRecipients,
  ): Promise<RoomEventPlan> {
    return this.#step(async (p) =>
      planRoomEvent(this.#ctx, p, { roomId, type, content }, recipients, {
        settings: await p.roomSettings.forSend(roomId, recipients.settings ?? {}, this.#defaults),
        claimable: (userIds) => this.#requests.claimable(p, userIds),
      }),
    );
  }

  /**
   * `prepareRoomEvent` for an in-room verification event (`m.key.verification.*`, or the
   * `m.room.message` request) of a flow with `partner`: encrypted with a Megolm session used for
   * nothing else, shared with the partner's devices and ours whatever the room's `shareWith` and
   * `verifyDevices` (the spec: encryption must not hinder verification). The room's own session
   * and its policy are untouched. `BAD_ARGUMENT` for any other event, or a partner who is not
   * another member of the room.
   */
  prepareVerificationEvent(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    partner: string,
    recipients: Pick<RoomEventRecipients, "members" | "claimSessions">,
  ): Promise<RoomEventPlan> {
    return this.#step((p) =>
      planVerificationEvent(this.#ctx, p, { roomId, type, content }, partner, recipients, (userIds) =>
        this.#requests.claimable(p, userIds),
      ),
    );
  }

  /**
   * Records a room's encryption settings (from `m.room.encryption`, and the user's per-room
   * `verifyDevices`, `shareWith`, `senderRequirement` and `errorOnVerifiedUserProblems`). Throws
   * `ENCRYPTION_DOWNGRADE` if the algorithm would change. Settings naming the algorithm are the
   * room's current `m.room.encryption`: a rotation period they leave out goes back to the default.
   */
  setRoomSettings(roomId: string, settings: RoomEncryptionSettings): Promise<void> {
    return this.#step((p) => p.roomSettings.record(roomId, settings));
  }

  /** The settings recorded for a room, if any. */
  getRoomSettings(roomId: string): Promise<RoomEncryptionSettings | undefined> {
    return this.#step((p) => p.roomSettings.recorded(roomId));
  }

  /** Forces a new room session at the next share (e.g. the user asked for it). */
  discardRoomKey(roomId: string): Promise<void> {
    return this.#step(async (p) => p.outbound.discard(roomId));
  }

  /**
   * The `m.room.encrypted` content for an event; the room key must have been shared, and shared
   * again once it reached the room's rotation period (`ROOM_KEY_NOT_SHARED` until then).
   */
  encryptRoomEvent(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    return this.#step(async (p) =>
      p.outbound.encrypt(
        roomId,
        type,
        content,
        false,
        await p.roomSettings.forSend(roomId, {}, this.#defaults),
      ),
    );
  }

  /**
   * Decrypts a room event; a failure is a value (`{ ok: false, error }`, a `DecryptionError` with
   * the reason). Events whose key may still come are remembered (and the key is asked of the
   * backup or our other devices); they are handed back by `receiveSyncChanges` (or an import) once
   * their key arrives, with the event as it was passed here (`encrypted`).
   */
  tryDecryptRoomEvent(
    event: EncryptedRoomEvent,
    roomId: string,
    options: { senderRequirement?: SenderRequirement } = {},
  ): Promise<RoomEventDecryption> {
    const requirement = options.senderRequirement ?? this.#defaults.senderRequirement;
    return this.#step((p) => decryptOne(p, this.#pending, event, roomId, requirement));
  }

  /**
   * `tryDecryptRoomEvent` for a batch of events (a sync response's timeline, a page of history),
   * in one step: the stored sessions they need are read in one store call per
   * `DECRYPT_PREFETCH_EVENTS` events instead of one call each, and the step saves once. The
   * outcomes come in the order of `events`. A store failure fails the whole batch (nothing of it
   * is saved); a decryption failure is the event's own outcome, as with `tryDecryptRoomEvent`.
   */
  tryDecryptRoomEvents(
    events: readonly RoomEventToDecrypt[],
    options: { senderRequirement?: SenderRequirement } = {},
  ): Promise<RoomEventDecryption[]> {
    const requirement = options.senderRequirement ?? this.#defaults.senderRequirement;
    return this.#step((p) => decryptBatch(p, this.#pending, events, requirement));
  }

  /** `tryDecryptRoomEvent` for callers who prefer a throw: the `DecryptionError` is thrown. */
  async decryptRoomEvent(
    event: EncryptedRoomEvent,
    roomId: string,
    options: { senderRequirement?: SenderRequirement } = {},
  ): Promise<DecryptedRoomEvent> {
    const outcome = await this.tryDecryptRoomEvent(event, roomId, options);
    if (!outcome.ok) throw outcome.error;
    return outcome.event;
  }

  /**
   * Imports room keys (decrypted entries of a key export file, or restored from a backup), in
   * batches of `IMPORT_BATCH_SIZE`, each saved on its own. Events waiting for these keys are
   * decrypted and returned. A key we already hold at least as well is not counted as imported.
   */
  importRoomKeys(
    keys: readonly unknown[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<{ imported: number; total: number; redecrypted: DecryptedRoomEvent[] }> {
    return importRoomKeys((fn) => this.#step(fn), this.#pending, keys, onProgress);
  }

  /**
   * The room keys we hold for these rooms, or for every room when `roomIds` is omitted, as key
   * export entries (encrypt them with `encryptKeyExport` from `keyroom/crypto` to write a standard
   * export file). Without rooms the sessions are read a page at a time (`exportAllRoomKeys`).
   */
  exportRoomKeys(roomIds?: Iterable<string>): Promise<ExportedRoomKey[]> {
    return exportRoomKeys((fn) => this.#step(fn), this.#ctx.store, roomIds);
  }

  /** How many room keys (inbound Megolm sessions) we hold: the size of a full export. */
  roomKeyCount(): Promise<number> {
    return this.#step(async () => (await this.#ctx.store.countInboundGroupSessions()).total);
  }

  /**
   * Every room key we hold, as pages of key export entries: each page is read from the store in
   * its own step (of at most `pageSize` sessions, `EXPORT_PAGE_SIZE` by default), so memory
   * stays bounded however many sessions the store holds and other steps run between pages.
   */
  exportAllRoomKeys(options: { pageSize?: number } = {}): AsyncGenerator<ExportedRoomKey[]> {
    return exportAllRoomKeys((fn) => this.#step(fn), this.#ctx.store, options);
  }

  /**
   * Verification events of senders the requirement refuses (as `RoomEventDecryption`'s
   * `verificationEvent`) among the waiting events that decrypted when their key came (by sync, an
   * import, a restore, a rehydration, a reload): for the verification flow alone, never to be
   * shown. Handed out once; at most `MAX_LATE_VERIFICATION_EVENTS` are kept until taken.
   */
  takeLateVerificationEvents(): DecryptedRoomEvent[] {
    return this.#pending.takeLateVerificationEvents();
  }

  /** How many undecryptable events wait for their key. */
  get pendingEventCount(): number {
    return this.#pending.size;
  }
}
