// What each sync response does to the engine in the client's encryption driver: membership and
// device-list changes (with the ones missed while away), invites accepted (here or in another
// client), to-device messages, then, after the sync's events went out, the rooms newly encrypted,
// events whose key came late, secrets our other devices sent and history bundles. `ClientCrypto`
// runs both steps under the store's lease.
import { wipe } from "../../crypto/primitives/index.ts";
import type {
  DecryptedRoomEvent,
  ProcessedToDeviceEvent,
  ReceivedSecret,
  UndecryptableRoomEvent,
} from "../../e2ee/index.ts";
import type { OlmMachine } from "../../e2ee/machine.ts";
import { BACKUP_SECRET, decodeKeySecret } from "../../e2ee/secret-storage/names.ts";
import type { CryptoStore } from "../../store/store.ts";
import { keysChangesResponseSchema, type ToDeviceEvent } from "../../wire/index.ts";
import { isRecord } from "../../wire/json.ts";
import { systemClock } from "../clock.ts";
import { errorSummary } from "../events/emitter.ts";
import { path } from "../http.ts";
import type { SyncCryptoChanges } from "../sync/hooks.ts";
import type { KeyBackup } from "./backup.ts";
import type { ClientCryptoHost } from "./client-crypto-types.ts";
import { emitLaterOutcomes } from "./decrypted-events.ts";
import { type HistorySharing, inviterOf } from "./history-sharing.ts";
import type { OutgoingRequestLoop } from "./outgoing.ts";
import type { RoomEncryption } from "./room-encryption.ts";

/**
 * The shortest time between two checks of the server's backup version made because a backup key
 * another device sent was refused as not current (a device sending stale keys over and over costs
 * one `GET /room_keys/version` per this period at most).
 */
export const BACKUP_RECHECK_INTERVAL_MS = 60_000;

export interface SyncProcessingParts {
  readonly machine: OlmMachine;
  readonly host: ClientCryptoHost;
  readonly store: CryptoStore;
  readonly rooms: RoomEncryption;
  readonly loop: OutgoingRequestLoop;
  readonly backup: KeyBackup;
  readonly historySharing: HistorySharing;
}

export class SyncProcessing {
  readonly #parts: SyncProcessingParts;
  /**
   * What this sync's engine step handed back for events that failed earlier (decrypted now, or
   * their key withheld): emitted after the sync's events, before its token is saved.
   */
  #later: { decrypted: DecryptedRoomEvent[]; withheld: UndecryptableRoomEvent[] } = {
    decrypted: [],
    withheld: [],
  };
  #changedRooms = new Set<string>();
  /** The crypto store's token when the client starts over without one (see `clientSince`). */
  #gapFrom: string | undefined;
  /**
   * The store never saw a sync: the first one is an initial sync, which carries no `device_lists`,
   * yet keys were queried at open (our own at least). Whatever changed in between (a device of
   * ours that logged in meanwhile) is asked for again once that sync is in.
   */
  #requeryAfterInitialSync = false;
  /** Secrets our other devices sent on request (the backup key), applied before the token is saved. */
  #receivedSecrets: ReceivedSecret[] = [];
  /**
   * A sync brought a room key bundle, or showed us join a room we were invited to: an import pass
   * starts once its events went out (in the background: the sync does not wait for downloads).
   */
  #bundlesArrived = false;
  /** The engine refused a backup key as not current: the server's version is asked again. */
  #recheckBackup = false;
  /** When the server's backup version was last asked again on a refusal (see `BACKUP_RECHECK_INTERVAL_MS`). */
  #lastBackupRecheck: number | undefined;

  constructor(parts: SyncProcessingParts) {
    this.#parts = parts;
  }

  /**
   * The client starts over without a sync token while the crypto store has `storeToken` (or none):
   * the device-list changes since then are caught up with the first sync.
   */
  startWithoutClientToken(storeToken: string | undefined): void {
    this.#gapFrom = storeToken;
    this.#requeryAfterInitialSync = storeToken === undefined;
  }

  /**
   * A sync's memberships, device lists and to-device messages, into the engine
   * (`processSyncChanges`). `deferVerification`: its verification events are not handed to the
   * verification flow (see `ClientCrypto.deferVerificationOf`).
   */
  async processChanges(
    changes: SyncCryptoChanges,
    opts: { deferVerification?: boolean } = {},
  ): Promise<ToDeviceEvent[]> {
    const { machine, host, loop } = this.#parts;
    if (changes.changedMemberships.length > 0) {
      await machine.receiveRoomMembership(changes.changedMemberships);
      for (const m of changes.changedMemberships) this.#changedRooms.add(m.roomId);
      await this.#invitesAccepted(changes);
    }
    // Before the new token is saved: a crash here must not skip the missed range next time.
    if (this.#gapFrom !== undefined) await this.#catchUpDeviceLists(this.#gapFrom, changes.nextBatch);
    if (this.#requeryAfterInitialSync) {
      const tracked = (await this.#parts.store.getTrackedUsers()).map((t) => t.userId);
      await machine.receiveKeysChanges([machine.userId, ...tracked], []);
      this.#requeryAfterInitialSync = false;
    }
    // First contact in bulk: the devices of senders new to us are fetched now, in one batched
    // query, rather than one round trip (and one durable commit) per new sender while decrypting
    // (`decryptRoomEvent`) — hundreds of them in a first sync of a large account. When every
    // sender is tracked with a current device list (a conversation's usual response) there is
    // nothing to fetch: no engine step and no outgoing pass (whatever else is queued goes out in
    // `beforeSaveSyncToken`'s pass of the same unit).
    if (machine.hasOutdatedUsers(changes.encryptedSenders)) {
      await machine.updateTrackedUsers(changes.encryptedSenders);
      await loop.run();
    }
    const result = await machine.receiveSyncChanges({
      toDevice: changes.toDeviceEvents,
      deviceLists: changes.deviceLists,
      ...(changes.oneTimeKeyCounts !== undefined ? { oneTimeKeyCounts: changes.oneTimeKeyCounts } : {}),
      ...(changes.unusedFallbackKeyTypes !== undefined
        ? { unusedFallbackKeyTypes: changes.unusedFallbackKeyTypes }
        : {}),
      nextBatch: changes.nextBatch,
      ...(opts.deferVerification === true ? { deferVerification: true } : {}),
    });
    this.#later.decrypted.push(...result.redecrypted);
    this.#later.withheld.push(...result.withheldEvents);
    this.#receivedSecrets.push(...result.secrets);
    for (const r of result.refusedSecrets) {
      // Never the key: its name, the device that sent it, and why.
      host.logger.warn(
        { name: r.name, deviceId: r.deviceId, reason: r.reason },
        "refused a secret another device sent: not the current key; still waiting for another answer",
      );
      if (r.name === BACKUP_SECRET && r.reason === "not_current") this.#recheckBackup = true;
    }
    for (const d of result.damagedOlmSessions) {
      // IDs only, never the record: the store's table, the peer's curve key and the session.
      host.logger.warn(
        { table: "olm_sessions", senderKey: d.senderKey, sessionId: d.sessionId },
        "deleted an Olm session record that failed authentication or did not load (corrupted or tampered crypto store); a new session with that device will be set up",
      );
    }
    for (const d of result.damagedInboundSessions) {
      host.logger.warn(
        { table: "inbound_group_sessions", roomId: d.roomId, sessionId: d.sessionId },
        "a stored Megolm session record failed authentication (corrupted or tampered crypto store); its messages stay undecrypted until a good copy of the key arrives",
      );
    }
    if (result.roomKeyBundles.length > 0) this.#bundlesArrived = true;
    for (const held of result.heldKeyRequests) host.emitKeyRequest(held);
    for (const f of result.failures) {
      host.logger.warn({ sender: f.sender, code: f.code }, "dropped an undecryptable to-device event");
    }
    // Rebuilt field by field: only events the engine decrypted carry `encryption` (a server cannot
    // forge it on a plaintext event), and room keys arrive without their `session_key`.
    return result.toDevice.map(({ type, sender, content, encryption }) =>
      encryption === undefined
        ? { type, sender, content }
        : { type, sender, content, encryption: { ...encryption } },
    );
  }

  /** After the sync's events went out (`beforeSaveSyncToken`). */
  async afterEvents(): Promise<void> {
    const { host, rooms, loop, historySharing } = this.#parts;
    const changed = this.#changedRooms;
    this.#changedRooms = new Set();
    for (const room of host.rooms()) {
      const settingsChanged = rooms.settingsChanged(room);
      if (!settingsChanged && !changed.has(room.roomId)) continue;
      if (!room.encrypted) continue;
      if (room.membership === "join") {
        if (changed.has(room.roomId) || settingsChanged)
          await rooms.record(room, { fromSync: true, track: true });
      } else if (room.membership === "invite" && settingsChanged) {
        // Seen in the invite: recorded now, so that no later sync (which may omit it) can make us
        // send plaintext into the room after joining.
        await rooms.record(room, { fromSync: true, track: false });
      }
    }
    const later = this.#later;
    this.#later = { decrypted: [], withheld: [] };
    await emitLaterOutcomes(host, later);
    await loop.run();
    await this.#useReceivedSecrets();
    await this.#recheckBackupVersion();
    if (this.#bundlesArrived || historySharing.retryDue) {
      this.#bundlesArrived = false;
      historySharing.schedule();
    }
    // In the background: new room keys go up to the backup, missing ones are looked up in it.
    this.#parts.backup.scheduleAfterSync();
  }

  /**
   * Our joins in this response to rooms we were invited to (the client's rooms are still as the
   * previous response left them): the inviter the invite named is recorded in the crypto store,
   * as `joinRoom` does, so their bundle is imported whichever client accepted the invite (MSC4268:
   * a bundle is taken only from the user whose invite we accepted, recently). Recorded before the
   * token is saved: a restart before the import still finds it (the first pass after a start
   * tries every ready bundle). A join `joinRoom` already recorded is recorded again, harmlessly.
   */
  async #invitesAccepted(changes: SyncCryptoChanges): Promise<void> {
    const { machine, host } = this.#parts;
    const own = machine.userId;
    const accepted = new Map<string, string>();
    // Each room's pending invite as this response goes on: at first the one the client holds, then
    // our invites in its timelines (a device that never saw the invite, away for both or with a
    // new client store, finds the inviter there).
    const invitedBy = new Map<string, string | undefined>();
    for (const m of changes.changedMemberships) {
      if (m.userId !== own) continue;
      if (!invitedBy.has(m.roomId)) {
        const room = host.getRoom(m.roomId);
        invitedBy.set(m.roomId, room !== undefined ? inviterOf(room, own) : undefined);
      }
      if (m.membership === "invite" && m.sender !== own) invitedBy.set(m.roomId, m.sender);
      // A leave (a refused invite) or ban in between, the held invite's too: a later join
      // accepted no invite.
      if (m.membership !== "invite" && m.membership !== "join") invitedBy.set(m.roomId, undefined);
      if (m.membership !== "join" || accepted.has(m.roomId)) continue;
      const inviter = acceptedInviter(m, invitedBy.get(m.roomId), own);
      if (inviter !== undefined) accepted.set(m.roomId, inviter);
    }
    for (const [roomId, inviter] of accepted) {
      await machine.historySharing.inviteAccepted(roomId, inviter);
      this.#bundlesArrived = true;
    }
  }

  /**
   * A backup key one of our verified devices sent on request: used with the server's version
   * (which refuses a key that is not its own). Several may come for one request while the engine
   * knows no version to check them against (it keeps the request open until one is used here): the
   * first the server's version takes wins, and a stale one before it is only logged. Other
   * secrets have no use here yet and are dropped.
   */
  async #useReceivedSecrets(): Promise<void> {
    const secrets = this.#receivedSecrets;
    this.#receivedSecrets = [];
    let used = false;
    for (const secret of secrets) {
      if (secret.name !== BACKUP_SECRET || used) continue;
      let key: Uint8Array;
      try {
        key = decodeKeySecret(secret.name, secret.value);
      } catch {
        continue;
      }
      try {
        await this.#parts.backup.useKey(key);
        used = true;
      } catch (e) {
        this.#parts.host.logger.warn(
          { err: errorSummary(e) },
          "the backup key another device sent was not used",
        );
      } finally {
        wipe(key);
      }
    }
  }

  /**
   * A backup key our device sent was refused as not the key of the version in use: that version
   * may have been replaced on the server since this device last asked (by another device, which
   * then sent the new key). The server's version is asked again, at most once per
   * `BACKUP_RECHECK_INTERVAL_MS` (refusals meanwhile wait for the next sync after it): a new
   * version is adopted (as `checkVersion` does) and the engine judges the refused keys again,
   * taking the one that is the new version's key.
   */
  async #recheckBackupVersion(): Promise<void> {
    if (!this.#recheckBackup) return;
    const now = (this.#parts.host.clock ?? systemClock).now();
    const last = this.#lastBackupRecheck;
    if (last !== undefined && now >= last && now - last < BACKUP_RECHECK_INTERVAL_MS) return;
    this.#recheckBackup = false;
    this.#lastBackupRecheck = now;
    try {
      await this.#parts.backup.checkVersion();
    } catch (e) {
      this.#parts.host.logger.warn(
        { err: errorSummary(e) },
        "could not check the server's backup version after a refused backup key",
      );
    }
  }

  /**
   * Device-list changes missed while the client was away (an initial sync does not carry them).
   * If the server cannot say, every tracked user is queried again.
   */
  async #catchUpDeviceLists(from: string, to: string): Promise<void> {
    const { host } = this.#parts;
    let changes: { changed: string[]; left: string[] };
    try {
      const res = await host.http.request({
        method: "GET",
        path: path`/_matrix/client/v3/keys/changes`,
        query: { from, to },
        schema: keysChangesResponseSchema,
      });
      changes = { changed: res.changed ?? [], left: res.left ?? [] };
    } catch (e) {
      host.logger.warn({ err: errorSummary(e) }, "keys/changes failed; querying every tracked user");
      const tracked = await this.#parts.store.getTrackedUsers();
      changes = { changed: tracked.map((t) => t.userId), left: [] };
    }
    await this.#parts.machine.receiveKeysChanges(changes.changed, changes.left);
    // Only once recorded: if saving failed, the sync is handled again and so is the catch-up.
    this.#gapFrom = undefined;
  }
}

/**
 * Whose invite our join `m` accepted, given `held`, the invite the response showed pending before
 * it (or the client held). The join's own word on what it replaced, when the server gives it,
 * comes first: a limited timeline may leave out a leave (a refused invite) and another invite
 * between the held invite and the join, and the state then shows the join alone. Replacing
 * anything but an invite (a leave, a ban, a knock), it accepted none; replacing an invite whose
 * sender the server names (Synapse's `prev_sender`), it accepted that one. Replacing a join (a
 * profile change), it says nothing of the invite before.
 */
function acceptedInviter(
  m: SyncCryptoChanges["changedMemberships"][number],
  held: string | undefined,
  own: string,
): string | undefined {
  const prev = m.prevMembership;
  if (prev === undefined || prev === "join") return held;
  if (prev !== "invite") return undefined;
  return m.prevSender !== undefined && m.prevSender !== own ? m.prevSender : held;
}

/**
 * A to-device event the client emitted, as the engine handed it back (the inverse of the rebuild at
 * the end of `processChanges`): for verification events whose processing was deferred.
 */
export function processedToDeviceOf(event: ToDeviceEvent): ProcessedToDeviceEvent {
  const enc: unknown = event.encryption;
  const text = (v: unknown): string => (typeof v === "string" ? v : "");
  return {
    type: event.type,
    sender: event.sender,
    content: event.content,
    encryption: isRecord(enc)
      ? {
          senderCurve25519: text(enc.senderCurve25519),
          senderEd25519: text(enc.senderEd25519),
          senderDevice: typeof enc.senderDevice === "string" ? enc.senderDevice : undefined,
        }
      : undefined,
  };
}
