/**
 * Device tracking (spec "Tracking the device list for a user"): which users we follow, which of
 * them are outdated, batched `/keys/query` requests, and applying their validated results.
 *
 * A user invalidated while a query for them is in flight stays outdated: each invalidation takes
 * a sequence number, and a response only clears users not invalidated since the query left.
 */

import { MAX_USERS_PER_DEVICE_LOOKUP } from "../../store/store.ts";
import { getOrInsert } from "../collections.ts";
import { isId } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";
import { newRequestId } from "../machine-context.ts";
import type { KeysQueryRequest, KeysQueryResponse } from "../requests.ts";
import type { DeviceTrust } from "../trust/trust.ts";
import type { DeviceRecord } from "./device.ts";
import { ReplacedDevices } from "./replaced.ts";
import { checkDeviceKeys } from "./validate.ts";

/** Users per `/keys/query` request (as matrix-rust-sdk does). */
export const KEYS_QUERY_BATCH_SIZE = 250;
/**
 * A user the server could not answer for (their homeserver is unreachable) is asked about again
 * only after this long, doubling on each failure up to `MAX_KEYS_QUERY_BACKOFF_MS`: the driver's
 * request loop must not spin on a dead server.
 */
export const KEYS_QUERY_BACKOFF_MS = 15_000;
export const MAX_KEYS_QUERY_BACKOFF_MS = 15 * 60 * 1000;
/** Devices accepted for one user: a hostile server must not make us store unbounded lists. */
export const MAX_DEVICES_PER_USER = 1000;
/**
 * Users tracked only because they sent us to-device messages from a device we did not know
 * (`trackSender`), not because we share an encrypted room: anyone can, under any number of made-up
 * user IDs, and each tracked user is stored and asked about again whenever outdated (for ever, on a
 * server that never answers). Past this many, the one tracked so longest ago is no longer tracked.
 * A user we come to share a room with (`trackUsers`) is tracked for good. The mark and its order
 * are stored with the tracked user (`TrackedUserRecord.senderOrder`), so the bound holds across
 * restarts.
 */
export const MAX_TRACKED_SENDERS = 1000;
/**
 * Users not tracked whose devices (most often none) are kept in memory: senders of to-device
 * messages are looked up under any made-up user ID, and users given up (`MAX_TRACKED_SENDERS`)
 * leave their devices behind. Past this many, the one read longest ago is forgotten here (read
 * from the store again when needed).
 */
export const MAX_CACHED_UNTRACKED_USERS = 1000;
/**
 * One-off `/keys/query` requests (`lookUp`: the application looks up a user we do not track) in
 * flight at once. Their sender sends them itself, and one whose send failed is never answered:
 * past this many, the oldest is forgotten (an answer to it is then an unknown request).
 */
export const MAX_LOOKUPS_IN_FLIGHT = 32;

interface TrackedUser {
  outdated: boolean;
  /** Sequence number of the last invalidation. */
  invalidatedAt: number;
}

interface InFlightQuery {
  readonly users: readonly string[];
  readonly sentAt: number;
  /** A one-off query (`lookUp`): not offered again by `inFlightRequests`, not blocking tracked queries. */
  readonly lookup?: true;
}

/** What a query response changed, for the room-key logic (rotation on removal). */
export interface DeviceListChanges {
  readonly removed: DeviceRecord[];
  readonly added: DeviceRecord[];
  /** Devices whose keys changed under the same ID: refused, the old keys kept. */
  readonly refused: { userId: string; deviceId: string }[];
  /** The server listed our user without our device: it lost our keys (e.g. after a logout). */
  ownDeviceMissing: boolean;
  /** The users the query asked about, and the validated answer (for cross-signing). */
  users: readonly string[];
  response: KeysQueryResponse | undefined;
}

export class DeviceManager {
  readonly #ctx: MachineContext;
  readonly #tracked = new Map<string, TrackedUser>();
  /**
   * The tracked users that are outdated: `queryRequests` runs on every pass of the client's
   * outgoing requests and almost always finds none, which this tells without walking every
   * tracked user (25 µs a pass for 1 000 of them).
   */
  readonly #outdated = new Set<string>();
  readonly #inFlight = new Map<string, InFlightQuery>();
  /** The IDs of one-off queries in `#inFlight`, oldest first (`MAX_LOOKUPS_IN_FLIGHT`). */
  readonly #lookups = new Set<string>();
  readonly #cache = new Map<string, Map<string, DeviceRecord>>();
  readonly #byCurve = new Map<string, DeviceRecord>();
  /** Users whose last query failed: when to ask again, and the current delay. */
  readonly #failures = new Map<string, { retryAt: number; delay: number }>();
  /**
   * Users tracked only by `trackSender`, tracked longest ago first (`MAX_TRACKED_SENDERS`), each
   * with its stored `senderOrder`.
   */
  readonly #senders = new Map<string, number>();
  /** The highest `senderOrder` given (or loaded). */
  #senderOrder = 0;
  /** Users in `#cache` not tracked, read longest ago first (`MAX_CACHED_UNTRACKED_USERS`). */
  readonly #untrackedCached = new Set<string>();
  #sequence = 0;
  #version = 0;
  /** Device IDs a new device took after their device was deleted (see `replaced.ts`). */
  readonly #replaced: ReplacedDevices;

  constructor(ctx: MachineContext) {
    this.#ctx = ctx;
    this.#replaced = new ReplacedDevices(ctx);
  }

  /**
   * Raised by every change to a device record (new, deleted, new keys or signatures, trust): what
   * was judged of the devices at one version holds while it stays (room-key shares reuse theirs).
   */
  get version(): number {
    return this.#version;
  }

  async load(): Promise<void> {
    const senders: { userId: string; order: number }[] = [];
    for (const u of await this.#ctx.store.getTrackedUsers()) {
      this.#tracked.set(u.userId, { outdated: u.outdated, invalidatedAt: 0 });
      if (u.outdated) this.#outdated.add(u.userId);
      if (u.senderOrder !== undefined) senders.push({ userId: u.userId, order: u.senderOrder });
    }
    senders.sort((a, b) => a.order - b.order);
    for (const { userId, order } of senders) {
      this.#senders.set(userId, order);
      this.#senderOrder = Math.max(this.#senderOrder, order);
    }
  }

  isTracked(userId: string): boolean {
    return this.#tracked.has(userId);
  }

  isOutdated(userId: string): boolean {
    return this.#tracked.get(userId)?.outdated ?? false;
  }

  /** The user's server could not answer for them lately: they are not asked again before the back-off ends. */
  isBackingOff(userId: string): boolean {
    return (this.#failures.get(userId)?.retryAt ?? 0) > this.#ctx.now();
  }

  /** Starts tracking users we newly share an encrypted room with (their devices get queried). */
  trackUsers(userIds: Iterable<string>): void {
    for (const userId of userIds) {
      if (!isId(userId)) continue;
      if (!this.#tracked.has(userId)) this.#invalidate(userId);
      // No longer a sender only: stored without the mark, so kept for good after a restart too.
      else if (this.#senders.delete(userId)) this.#save(userId);
    }
  }

  /**
   * Someone sent us a to-device message from a device we do not know (or asks to verify): query
   * their devices so what they sent can be attributed. A user not tracked already is tracked only
   * while among the last `MAX_TRACKED_SENDERS` such users.
   */
  trackSender(userId: string): void {
    if (!isId(userId)) return;
    if (this.#tracked.has(userId) && !this.#senders.has(userId)) {
      this.#invalidate(userId);
      return;
    }
    // Tracked anew, or again as the latest sender: saved by `#invalidate` with the new order.
    this.#senders.delete(userId);
    this.#senders.set(userId, ++this.#senderOrder);
    this.#invalidate(userId);
    this.#boundSenders();
  }

  /** Gives up the users tracked only as senders longest ago, past `MAX_TRACKED_SENDERS`. */
  #boundSenders(): void {
    for (const oldest of this.#senders.keys()) {
      if (this.#senders.size <= MAX_TRACKED_SENDERS) break;
      this.#senders.delete(oldest);
      this.stopTracking([oldest]);
    }
  }

  /** `device_lists.changed` (or `/keys/changes`): re-query users we track. */
  markOutdated(userIds: Iterable<string>): void {
    for (const userId of userIds) {
      if (this.#tracked.has(userId)) this.#invalidate(userId);
    }
  }

  /** Every tracked user's list: some changed, which ones is not known (re-query them all). */
  markAllOutdated(): void {
    this.markOutdated([...this.#tracked.keys()]);
  }

  /** `device_lists.left`: we no longer share an encrypted room, so stop following them. */
  stopTracking(userIds: Iterable<string>): void {
    for (const userId of userIds) {
      if (userId === this.#ctx.userId || !this.#tracked.has(userId)) continue;
      this.#tracked.delete(userId);
      this.#outdated.delete(userId);
      this.#failures.delete(userId);
      this.#senders.delete(userId);
      this.#ctx.tx.untrackedUsers.push(userId);
      if (this.#cache.has(userId)) this.#cachedUntracked(userId);
    }
  }

  /** `userId`'s devices were read into memory, or they are no longer tracked: bounds such users. */
  #cachedUntracked(userId: string): void {
    if (this.#tracked.has(userId)) return;
    this.#untrackedCached.delete(userId);
    this.#untrackedCached.add(userId);
    for (const oldest of this.#untrackedCached) {
      if (this.#untrackedCached.size <= MAX_CACHED_UNTRACKED_USERS) break;
      this.#untrackedCached.delete(oldest);
      // Devices of theirs written in this step are not in the store yet: keep them in memory.
      if (this.#tracked.has(oldest) || this.#ctx.tx.devices.some((d) => d.userId === oldest)) continue;
      const byUser = this.#cache.get(oldest);
      this.#cache.delete(oldest);
      for (const d of byUser?.values() ?? [])
        if (this.#byCurve.get(d.curve25519Key) === d) this.#byCurve.delete(d.curve25519Key);
    }
  }

  #invalidate(userId: string): void {
    this.#untrackedCached.delete(userId);
    this.#sequence++;
    this.#tracked.set(userId, { outdated: true, invalidatedAt: this.#sequence });
    this.#outdated.add(userId);
    const tx = this.#ctx.tx;
    // Deletions apply after upserts: a user untracked and tracked again in one step stays tracked.
    tx.untrackedUsers = tx.untrackedUsers.filter((u) => u !== userId);
    this.#save(userId);
  }

  /**
   * Queues the user's tracking state, sender-only mark included, for this step's save. Records
   * are whole (the last queued wins): each must carry the mark as it is now.
   */
  #save(userId: string): void {
    const tracked = this.#tracked.get(userId);
    if (tracked === undefined) return;
    const senderOrder = this.#senders.get(userId);
    this.#ctx.tx.trackedUsers.push(
      senderOrder === undefined
        ? { userId, outdated: tracked.outdated }
        : { userId, outdated: tracked.outdated, senderOrder },
    );
  }

  /**
   * One-off queries, in batches, for those of these users we do not track (the application looks
   * them up, e.g. to verify them): the answer is applied as any other (their devices and identity
   * stored), but they are not tracked, so the changes of their device lists are not followed and
   * the tracked users do not grow with each user looked up. Users we come to share an encrypted
   * room with are tracked then (`trackUsers`). Whoever asks sends these requests and hands back
   * the answer (`receiveQueryResponse`); `outgoingRequests` does not offer them.
   */
  lookUp(userIds: Iterable<string>): KeysQueryRequest[] {
    const users = [...new Set(userIds)].filter((u) => isId(u) && !this.#tracked.has(u));
    const requests: KeysQueryRequest[] = [];
    for (let i = 0; i < users.length; i += KEYS_QUERY_BATCH_SIZE) {
      const batch = users.slice(i, i + KEYS_QUERY_BATCH_SIZE);
      const id = newRequestId();
      this.#inFlight.set(id, { users: batch, sentAt: this.#sequence, lookup: true });
      this.#lookups.add(id);
      requests.push({
        id,
        type: "keys_query",
        body: { device_keys: Object.fromEntries(batch.map((u) => [u, []])) },
      });
    }
    for (const oldest of this.#lookups) {
      if (this.#lookups.size <= MAX_LOOKUPS_IN_FLIGHT) break;
      this.#lookups.delete(oldest);
      this.#inFlight.delete(oldest);
    }
    return requests;
  }

  /** Queries for outdated users not already in flight, in batches. */
  queryRequests(): KeysQueryRequest[] {
    if (this.#outdated.size === 0) return [];
    const busy = new Set<string>();
    for (const q of this.#inFlight.values()) if (q.lookup !== true) for (const u of q.users) busy.add(u);
    const now = this.#ctx.now();
    const waiting = (u: string): boolean => (this.#failures.get(u)?.retryAt ?? 0) > now;
    const users = [...this.#tracked]
      .filter(([u, t]) => t.outdated && !busy.has(u) && !waiting(u))
      .map(([u]) => u);
    const requests: KeysQueryRequest[] = [];
    for (let i = 0; i < users.length; i += KEYS_QUERY_BATCH_SIZE) {
      const batch = users.slice(i, i + KEYS_QUERY_BATCH_SIZE);
      const id = newRequestId();
      this.#inFlight.set(id, { users: batch, sentAt: this.#sequence });
      requests.push({
        id,
        type: "keys_query",
        body: { device_keys: Object.fromEntries(batch.map((u) => [u, []])) },
      });
    }
    return requests;
  }

  /** Requests already handed out and not answered (re-offered so a lost one is retried). */
  inFlightRequests(): KeysQueryRequest[] {
    if (this.#inFlight.size === this.#lookups.size) return [];
    return [...this.#inFlight]
      .filter(([, q]) => q.lookup !== true)
      .map(([id, q]) => ({
        id,
        type: "keys_query",
        body: { device_keys: Object.fromEntries(q.users.map((u) => [u, []])) },
      }));
  }

  hasQuery(id: string): boolean {
    return this.#inFlight.has(id);
  }

  async receiveQueryResponse(id: string, parsed: KeysQueryResponse): Promise<DeviceListChanges> {
    const query = this.#inFlight.get(id);
    const changes: DeviceListChanges = {
      removed: [],
      added: [],
      refused: [],
      ownDeviceMissing: false,
      users: [],
      response: undefined,
    };
    if (query === undefined) return changes;
    changes.users = query.users;
    changes.response = parsed;
    this.#inFlight.delete(id);
    this.#lookups.delete(id);
    for (const userId of query.users) {
      const returned = parsed.device_keys?.[userId];
      // A user the server could not answer for (federation failure) stays outdated, with a backoff.
      if (returned === undefined) {
        // Not tracked (a one-off lookup, or given up: `MAX_TRACKED_SENDERS`): the asker is told.
        if (query.lookup === true || !this.#tracked.has(userId)) continue;
        const delay = Math.min(
          MAX_KEYS_QUERY_BACKOFF_MS,
          (this.#failures.get(userId)?.delay ?? 0) * 2 || KEYS_QUERY_BACKOFF_MS,
        );
        this.#failures.set(userId, { retryAt: this.#ctx.now() + delay, delay });
        continue;
      }
      this.#failures.delete(userId);
      await this.#applyUserDevices(userId, returned, changes);
      const tracked = this.#tracked.get(userId);
      if (tracked !== undefined && tracked.invalidatedAt <= query.sentAt) {
        tracked.outdated = false;
        this.#outdated.delete(userId);
        this.#save(userId);
      }
    }
    return changes;
  }

  async #applyUserDevices(
    userId: string,
    returned: Record<string, unknown>,
    changes: DeviceListChanges,
  ): Promise<void> {
    if (userId === this.#ctx.userId && returned[this.#ctx.deviceId] === undefined)
      changes.ownDeviceMissing = true;
    const known = await this.#userDevices(userId);
    const seen = new Set<string>();
    let count = 0;
    for (const [deviceId, raw] of Object.entries(returned)) {
      if (++count > MAX_DEVICES_PER_USER) break;
      if (userId === this.#ctx.userId && deviceId === this.#ctx.deviceId) continue; // ourselves
      if (!isId(deviceId)) continue;
      const checked = checkDeviceKeys(raw, userId, deviceId);
      if (typeof checked === "string") continue; // invalid entries are ignored, not trusted
      seen.add(deviceId);
      const old = known.get(deviceId);
      const newKeys =
        old !== undefined && (old.ed25519Key !== checked.ed25519 || old.curve25519Key !== checked.curve25519);
      if (newKeys && !old.deleted) {
        // Same device ID, new identity keys: an attack or a reused ID; keep what we had.
        changes.refused.push({ userId, deviceId });
        continue;
      }
      // A deleted device's ID used again (a new login asking for it) with new keys is a new
      // device, as in matrix-rust-sdk: nothing of the old one's trust carries over.
      if (newKeys) {
        this.#version++;
        this.#unindex(old);
        await this.#replaced.note(old);
      }
      const record: DeviceRecord = {
        userId,
        deviceId,
        keys: checked.json,
        curve25519Key: checked.curve25519,
        ed25519Key: checked.ed25519,
        trust: newKeys ? "unset" : (old?.trust ?? "unset"),
        deleted: false,
      };
      if (old === undefined || old.deleted) changes.added.push(record);
      // New signatures (cross-signing) count as a change: trust is derived from them.
      if (
        old === undefined ||
        old.deleted ||
        old.keys.unsigned?.device_display_name !== record.keys.unsigned?.device_display_name ||
        !sameSignatures(old.keys.signatures, record.keys.signatures)
      ) {
        this.#put(record);
      }
    }
    // A refused device is in `seen`: its old keys are kept, not removed.
    for (const [deviceId, old] of known) {
      if (!seen.has(deviceId) && !old.deleted) {
        const gone = { ...old, deleted: true };
        changes.removed.push(gone);
        this.#put(gone);
      }
    }
  }

  #put(record: DeviceRecord): void {
    this.#version++;
    this.#index(record);
    getOrInsert(this.#cache, record.userId, () => new Map<string, DeviceRecord>()).set(
      record.deviceId,
      record,
    );
    this.#ctx.tx.devices.push(record);
  }

  async #userDevices(userId: string): Promise<Map<string, DeviceRecord>> {
    let byUser = this.#cache.get(userId);
    if (byUser === undefined) {
      byUser = new Map((await this.#ctx.store.getUserDevices(userId)).map((d) => [d.deviceId, d]));
      this.#cache.set(userId, byUser);
      for (const d of byUser.values()) this.#index(d);
      this.#cachedUntracked(userId);
    }
    return byUser;
  }

  /**
   * Reads the devices of these users in one store call (per `MAX_USERS_PER_DEVICE_LOOKUP`), for
   * those not in memory yet: the senders of a batch of events about to be decrypted, whose
   * devices each event's sender check would otherwise read one user at a time.
   */
  async prefetchUsers(userIds: Iterable<string>): Promise<void> {
    const todo = [...new Set(userIds)].filter((u) => !this.#cache.has(u));
    for (let start = 0; start < todo.length; start += MAX_USERS_PER_DEVICE_LOOKUP) {
      const chunk = todo.slice(start, start + MAX_USERS_PER_DEVICE_LOOKUP);
      const read = new Map<string, Map<string, DeviceRecord>>();
      for (const userId of chunk) read.set(userId, new Map());
      // Each user's devices come in device ID order, as getUserDevices gives them.
      for (const d of await this.#ctx.store.getDevicesOfUsers(chunk)) read.get(d.userId)?.set(d.deviceId, d);
      for (const [userId, byUser] of read) {
        if (this.#cache.has(userId)) continue; // read meanwhile: memory may be newer
        this.#cache.set(userId, byUser);
        for (const d of byUser.values()) this.#index(d);
        this.#cachedUntracked(userId);
      }
    }
  }

  /** A user's current (not deleted) devices. */
  async devicesOf(userId: string): Promise<DeviceRecord[]> {
    return [...(await this.#userDevices(userId)).values()].filter((d) => !d.deleted);
  }

  /** A device by ID, deleted ones included (old messages still need attributing). */
  async device(userId: string, deviceId: string): Promise<DeviceRecord | undefined> {
    return (await this.#userDevices(userId)).get(deviceId);
  }

  /**
   * `device()` without waiting when the user's devices are already in memory (the usual case
   * while decrypting a timeline): `null` means "not loaded, ask `device()`".
   */
  cachedDevice(userId: string, deviceId: string): DeviceRecord | undefined | null {
    const byUser = this.#cache.get(userId);
    return byUser === undefined ? null : byUser.get(deviceId);
  }

  /**
   * The device of `userId` that holds this Curve25519 key (a current one before a deleted one).
   * A curve key names a device only among its own user's devices: another user's device may list
   * the same key (nothing stops a device from publishing someone else's Curve25519 key).
   */
  async userDeviceByCurveKey(userId: string, curve25519: string): Promise<DeviceRecord | undefined> {
    return pickByCurve(await this.#userDevices(userId), curve25519);
  }

  /** `userDeviceByCurveKey()` from memory only: `null` means "not loaded, ask for it". */
  cachedUserDeviceByCurveKey(userId: string, curve25519: string): DeviceRecord | undefined | null {
    const byUser = this.#cache.get(userId);
    return byUser === undefined ? null : pickByCurve(byUser, curve25519);
  }

  /** `deviceByCurveKey()` from memory only: `null` means "not indexed, ask the store". */
  cachedDeviceByCurveKey(curve25519: string): DeviceRecord | null {
    return this.#byCurve.get(curve25519) ?? null;
  }

  async deviceByCurveKey(curve25519: string): Promise<DeviceRecord | undefined> {
    const known = this.#byCurve.get(curve25519);
    if (known !== undefined) return known;
    const stored = await this.#ctx.store.getDeviceByCurve25519Key(curve25519);
    if (stored !== undefined) this.#index(stored);
    return stored;
  }

  /** Forgets `record`'s Curve25519 key → device entry (its device now has other keys). */
  #unindex(record: DeviceRecord): void {
    const existing = this.#byCurve.get(record.curve25519Key);
    if (existing?.userId === record.userId && existing.deviceId === record.deviceId) {
      this.#byCurve.delete(record.curve25519Key);
    }
  }

  /** Curve25519 key → device, preferring a current device over a deleted one. */
  #index(record: DeviceRecord): void {
    const existing = this.#byCurve.get(record.curve25519Key);
    const same = existing?.userId === record.userId && existing.deviceId === record.deviceId;
    if (existing === undefined || same || (existing.deleted && !record.deleted)) {
      this.#byCurve.set(record.curve25519Key, record);
    }
  }

  /**
   * Whether any of these devices, holders of a room key created at `createdAt`, is a deleted
   * device whose ID a new device took since: the key is to be replaced (see `replaced.ts`).
   */
  replacedSince(
    devices: readonly { userId: string; deviceId: string }[],
    createdAt: number,
  ): Promise<boolean> {
    return this.#replaced.anySince(devices, createdAt);
  }

  async setTrust(userId: string, deviceId: string, trust: DeviceTrust): Promise<DeviceRecord | undefined> {
    const old = (await this.#userDevices(userId)).get(deviceId);
    if (old === undefined) return undefined;
    const updated = { ...old, trust };
    this.#put(updated);
    return updated;
  }
}

function pickByCurve(
  devices: ReadonlyMap<string, DeviceRecord>,
  curve25519: string,
): DeviceRecord | undefined {
  let deleted: DeviceRecord | undefined;
  for (const d of devices.values()) {
    if (d.curve25519Key !== curve25519) continue;
    if (!d.deleted) return d;
    deleted ??= d;
  }
  return deleted;
}

function sameSignatures(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
