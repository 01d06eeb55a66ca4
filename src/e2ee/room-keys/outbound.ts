/**
 * Outbound Megolm sessions: one per room, shared over Olm with every device that should read the
 * room and does not hold the key yet, rotated when it ages, when it has encrypted enough messages,
 * or when a device that holds it should no longer read the room.
 */
import { RUST_SHARED_HISTORY_FIELD } from "../../crypto/key-export/exported-room-key.ts";
import { MAX_MESSAGE_INDEX, MegolmError, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import type {
  OutboundGroupSessionRecord,
  OutboundGroupSessionUpdate,
  SharedWith,
} from "../../store/records.ts";
import { mergeOutboundSharing } from "../../store/validate.ts";
import { entryOf } from "../collections.ts";
import type { CrossSigning } from "../cross-signing/manager.ts";
import type { OwnEchoes } from "../decryption/own-echoes.ts";
import { type DeviceRecord, isDehydrated, MEGOLM_ALGORITHM } from "../devices/device.ts";
import type { DeviceManager } from "../devices/manager.ts";
import { E2eeError, type UnknownDevice, UnknownDevicesError, VerifiedUserProblemError } from "../errors.ts";
import type { OwnDevice } from "../identity/own-device.ts";
import type { MachineContext } from "../machine-context.ts";
import { newRequestId } from "../machine-context.ts";
import type { OlmSessions } from "../olm-sessions/sessions.ts";
import type { ToDeviceRequest } from "../requests.ts";
import { queueEncryptedToDevice, queueToDevice } from "../to-device-queue.ts";
import { isUnseen, mayReceiveKeys } from "../trust/trust.ts";
import type { InboundSessions } from "./inbound.ts";
import { NO_OLM_CODE, NoOlmNotices } from "./no-olm.ts";
import { addOwnInboundCopy, roomEventPlaintext, sealRoomEvent } from "./seal.ts";
import { isSharedHistory, type ResolvedSettings, type RoomMember, recipientsOf } from "./settings.ts";
import { type SettledShare, type ShareVersions, settledShare, stillSettled } from "./settled-share.ts";

/** Devices addressed by one to-device request when sharing a room key. */
export const SHARE_BATCH_SIZE = 250;

/**
 * Message indexes saved ahead in one write: the stored ratchet is the session as it will be
 * RATCHET_RESERVATION messages later, so the messages before that index leave without a write each,
 * and a restart (after a crash at any point) continues from the stored index, past every index
 * used. A restart skips the unused rest, which receivers ratchet over, and counts it toward rotation.
 */
export const RATCHET_RESERVATION = 32;

interface OutboundEntry {
  /** In memory: the actual message count. */
  record: OutboundGroupSessionRecord;
  readonly session: OutboundGroupSession;
  /** The index of the stored ratchet: messages below it are covered by what is saved. */
  reservedIndex: number;
  /** What the store holds (or is about to): the ratchet at `reservedIndex` and its message count. */
  stored: Pick<OutboundGroupSessionRecord, "pickle" | "messageCount">;
  /** The last share found nothing to do, judged on this (see settled-share.ts). */
  settled?: SettledShare | undefined;
}

type OutboundRatchet = Pick<OutboundGroupSessionUpdate, "roomId" | "sessionId" | "pickle" | "messageCount">;
/** Devices added to a session's lists by one write. */
type SharingUpdate = Omit<OutboundGroupSessionUpdate, keyof OutboundRatchet>;

const deviceKey = (userId: string, deviceId: string): string => JSON.stringify([userId, deviceId]);

function devicesIn(shared: SharedWith): { userId: string; deviceId: string }[] {
  return Object.entries(shared).flatMap(([userId, devices]) =>
    Object.keys(devices).map((deviceId) => ({ userId, deviceId })),
  );
}

/**
 * A room key this device created, as another user's device that holds it may have it again: the
 * export from the first message index that device was given (never earlier), and who created it.
 */
export interface SharedRoomKey {
  /** The device as we know it now (the answer is encrypted to its identity key). */
  readonly device: DeviceRecord;
  readonly exported: string;
  readonly senderKey: string;
  readonly senderClaimedEd25519: string;
}

/** What a share reads of a device's owner (see `OutboundSessions.#owner`). */
interface Owner {
  readonly identity: Parameters<CrossSigning["deviceTrust"]>[1];
  /** We verified the user (read only under `errorOnVerifiedUserProblems`). */
  readonly verified: boolean;
}

/**
 * The first message index a device was given the key at (the lowest, if given it more than once),
 * counting requests still carrying it; undefined if it was never given it.
 */
function firstIndexOf(
  record: OutboundGroupSessionRecord,
  userId: string,
  deviceId: string,
): number | undefined {
  let first: number | undefined;
  for (const shared of [record.sharedWith, ...Object.values(record.pendingShares)]) {
    const devices = Object.hasOwn(shared, userId) ? shared[userId] : undefined;
    const i = devices !== undefined && Object.hasOwn(devices, deviceId) ? devices[deviceId] : undefined;
    if (typeof i === "number" && (first === undefined || i < first)) first = i;
  }
  return first;
}

/** Applies `added` to the session's device lists in memory (the store applies the same update). */
function withSharing(record: OutboundGroupSessionRecord, added: SharingUpdate): OutboundGroupSessionRecord {
  return { ...record, ...mergeOutboundSharing(record, added) };
}

export class OutboundSessions {
  readonly #ctx: MachineContext;
  readonly #own: OwnDevice;
  readonly #devices: DeviceManager;
  readonly #olm: OlmSessions;
  readonly #inbound: InboundSessions;
  readonly #crossSigning: CrossSigning;
  readonly #cache = new Map<string, OutboundEntry | null>();
  /** Devices told `m.no_olm` already: once per device, not per session. */
  readonly #noOlm: NoOlmNotices;

  /** Events encrypted here, until their echo (see e2ee/decryption/own-echoes.ts). */
  readonly #echoes: OwnEchoes;

  constructor(
    ctx: MachineContext,
    own: OwnDevice,
    devices: DeviceManager,
    olm: OlmSessions,
    inbound: InboundSessions,
    crossSigning: CrossSigning,
    echoes: OwnEchoes,
  ) {
    this.#ctx = ctx;
    this.#noOlm = new NoOlmNotices(ctx);
    this.#echoes = echoes;
    this.#crossSigning = crossSigning;
    this.#own = own;
    this.#devices = devices;
    this.#olm = olm;
    this.#inbound = inbound;
  }

  async #get(roomId: string): Promise<OutboundEntry | undefined> {
    const cached = this.#cache.get(roomId);
    if (cached !== undefined) return cached ?? undefined;
    const record = await this.#ctx.store.getOutboundGroupSession(roomId);
    let entry: OutboundEntry | null = null;
    if (record !== undefined) {
      try {
        const session = OutboundGroupSession.fromPickle(record.pickle);
        entry = { record, session, reservedIndex: session.messageIndex, stored: record };
      } catch {
        entry = null; // unreadable: a new session replaces it
      }
    }
    this.#cache.set(roomId, entry);
    return entry ?? undefined;
  }

  /** Writes the whole record (with the stored ratchet): for a new session only. */
  #save(entry: OutboundEntry): void {
    entry.record = { ...entry.record, pickle: entry.stored.pickle };
    this.#ctx.tx.outboundGroupSessions.push({ ...entry.record, ...entry.stored });
  }

  /**
   * Writes the stored ratchet and message count plus only the devices `added` since the last
   * save, so the cost does not grow with the number of devices holding the key.
   */
  #update(entry: OutboundEntry, added: SharingUpdate = {}): void {
    entry.record = { ...entry.record, pickle: entry.stored.pickle };
    this.#ctx.tx.outboundGroupSessionUpdates.push({
      roomId: entry.record.roomId,
      sessionId: entry.record.sessionId,
      pickle: entry.stored.pickle,
      messageCount: entry.stored.messageCount,
      ...added,
    });
  }

  /** Saves the ratchet RATCHET_RESERVATION messages ahead (capped by the session's last index). */
  #reserve(entry: OutboundEntry): void {
    const index = entry.session.messageIndex;
    const ahead = Math.min(index + RATCHET_RESERVATION, MAX_MESSAGE_INDEX);
    entry.reservedIndex = ahead;
    entry.stored = {
      pickle: entry.session.toPickleAt(ahead),
      messageCount: entry.record.messageCount + (ahead - index),
    };
    this.#update(entry);
  }

  /** Forces the next share in this room to start a new session. */
  async discard(roomId: string): Promise<void> {
    if ((await this.#get(roomId)) === undefined) return;
    this.#cache.set(roomId, null);
    this.#ctx.tx.deletedOutboundGroupSessions.push(roomId);
  }

  /**
   * Each device holding the key or about to (by `deviceKey`): the first message index it was given,
   * the lowest when it was given the key more than once.
   */
  #firstIndexes(entry: OutboundEntry): Map<string, number> {
    const out = new Map<string, number>();
    const { sharedWith, pendingShares } = entry.record;
    for (const shared of [sharedWith, ...Object.values(pendingShares)]) {
      for (const [userId, devices] of Object.entries(shared)) {
        for (const [deviceId, i] of Object.entries(devices)) {
          const key = deviceKey(userId, deviceId);
          out.set(key, Math.min(i, out.get(key) ?? i));
        }
      }
    }
    return out;
  }

  /**
   * The room key from message index `first`, signed by the session, to give a device again what
   * it was given: from our own copy of the session. Without that copy (or one starting later) the
   * key from the current index, as matrix-rust-sdk re-shares it.
   */
  async #sessionKeyAt(entry: OutboundEntry, first: number): Promise<{ sessionKey: string; index: number }> {
    const current = entry.session.messageIndex;
    if (first < current) {
      const ours = await this.#inbound.get(entry.record.roomId, entry.record.sessionId);
      if (
        ours !== undefined &&
        ours.record.senderKey === this.#own.identityKeys.curve25519 &&
        ours.session.firstKnownIndex <= first
      ) {
        try {
          return { sessionKey: entry.session.sessionKeyFrom(ours.session.exportAt(first)), index: first };
        } catch (e) {
          if (!(e instanceof MegolmError)) throw e;
          // Not a copy of this session after all: the current index below.
        }
      }
    }
    return { sessionKey: entry.session.sessionKey(), index: current };
  }

  /** What a share's decision depends on besides its arguments and the session (settled-share.ts). */
  #versions(): ShareVersions {
    return {
      devices: this.#devices.version,
      identities: this.#crossSigning.version,
      renewed: this.#olm.renewed.version,
    };
  }

  #holders(entry: OutboundEntry): { userId: string; deviceId: string }[] {
    const { sharedWith, pendingShares } = entry.record;
    return [devicesIn(sharedWith), ...Object.values(pendingShares).map(devicesIn)].flat();
  }

  #expired(entry: OutboundEntry, settings: ResolvedSettings): boolean {
    const age = this.#ctx.now() - entry.record.createdAt;
    // A negative age (the clock went back past the session's creation) says nothing of how long
    // it has been in use: it is expired too, or it would outlive every period (as matrix-rust-sdk).
    return (
      entry.record.messageCount >= settings.rotationPeriodMessages ||
      age < 0 ||
      age >= settings.rotationPeriodMs
    );
  }

  /**
   * The devices that should get the room key now, checked against `errorOnVerifiedUserProblems`,
   * `verifyDevices` and `shareWith`.
   */
  async #recipientDevices(
    members: readonly RoomMember[],
    settings: ResolvedSettings,
  ): Promise<{ allowed: DeviceRecord[]; refused: DeviceRecord[]; unverified: DeviceRecord[] }> {
    const allowed: DeviceRecord[] = [];
    const refused: DeviceRecord[] = [];
    const unverified: DeviceRecord[] = [];
    const unseen: UnknownDevice[] = [];
    const changedIdentity: string[] = [];
    const unsigned: UnknownDevice[] = [];
    for (const userId of recipientsOf(members, settings.historyVisibility)) {
      const devices = await this.#devices.devicesOf(userId);
      const owner = await this.#owner(userId, devices, settings);
      if (owner === "changed identity") {
        changedIdentity.push(userId);
        continue;
      }
      for (const d of devices) {
        if (d.userId === this.#ctx.userId && d.deviceId === this.#ctx.deviceId) continue;
        const verdict = this.#verdict(d, owner, settings);
        const unknown = { userId: d.userId, deviceId: d.deviceId, ed25519: d.ed25519Key };
        if (verdict === "refused") refused.push(d);
        else if (verdict === "unsigned") unsigned.push(unknown);
        else if (verdict === "unseen") unseen.push(unknown);
        else if (verdict === "unverified") unverified.push(d);
        else allowed.push(d);
      }
    }
    if (changedIdentity.length > 0 || unsigned.length > 0) {
      throw new VerifiedUserProblemError(changedIdentity, unsigned);
    }
    if (unseen.length > 0) throw new UnknownDevicesError(unseen);
    return { allowed, refused, unverified };
  }

  /**
   * What a share needs to know of a user to judge their devices: their identity (when a rule reads
   * it) and whether we verified them, or `"changed identity"` under `errorOnVerifiedUserProblems`
   * when a user we verified changed identity (their devices say nothing until the app decides).
   */
  async #owner(
    userId: string,
    devices: readonly DeviceRecord[],
    settings: ResolvedSettings,
  ): Promise<Owner | "changed identity"> {
    const checkProblems = settings.errorOnVerifiedUserProblems;
    const needIdentity = settings.shareWith !== "all" || checkProblems || devices.some(isDehydrated);
    const identity = needIdentity ? await this.#crossSigning.identity(userId) : undefined;
    if (!checkProblems || identity === undefined) return { identity, verified: false };
    const info = this.#crossSigning.info(identity);
    return info.violation ? "changed identity" : { identity, verified: info.verified };
  }

  /**
   * What a share does with device `d` (not ours): gives it the key (`"allowed"`), tells it
   * `m.room_key.withheld` (`"refused"`: blacklisted; `"unverified"`: `shareWith` not met), or
   * refuses to share at all (`"unsigned"`: an unsigned device of a user we verified, under
   * `errorOnVerifiedUserProblems`; `"unseen"`: trust unset under `verifyDevices`).
   */
  #verdict(
    d: DeviceRecord,
    owner: Owner,
    settings: ResolvedSettings,
  ): "allowed" | "refused" | "unsigned" | "unseen" | "unverified" {
    if (!mayReceiveKeys(d.trust)) return "refused";
    if (
      owner.verified &&
      d.trust === "unset" &&
      !this.#crossSigning.deviceTrust(d, owner.identity).crossSigned
    ) {
      return "unsigned";
    }
    if (settings.verifyDevices && isUnseen(d.trust)) return "unseen";
    if (!this.#meetsRequirement(d, owner.identity, settings)) return "unverified";
    return "allowed";
  }

  /**
   * The key another user's device asks us for again (an `m.room_key_request`), as matrix-rust-sdk
   * answers one: only the room's current session (one this device created), only if it was given
   * to that device (or is on its way to it) and not withheld from it, and only from the first
   * index the device was given, never earlier. The device must still be the one given the key:
   * not deleted, its ID not taken by a new device since (`replacedSince`; a device's identity keys
   * never change otherwise, see `DeviceManager`): the answer, encrypted to its identity key now,
   * goes to the identity key the room key went to. And a share now would give it the key: not
   * blacklisted, the room's `shareWith` met, nothing that would stop a share (`#verdict`).
   */
  async sharedKeyFor(
    userId: string,
    deviceId: string,
    roomId: string,
    sessionId: string,
    settings: ResolvedSettings,
  ): Promise<SharedRoomKey | undefined> {
    if (userId === this.#ctx.userId) return undefined;
    const entry = await this.#get(roomId);
    if (entry === undefined || entry.record.sessionId !== sessionId) return undefined;
    const first = firstIndexOf(entry.record, userId, deviceId);
    if (first === undefined) return undefined;
    const withheld = entry.record.withheldFrom;
    if (Object.hasOwn(withheld, userId) && withheld[userId]?.includes(deviceId)) return undefined;
    // Looked up only now: a request naming a device that holds no key of ours costs no store read.
    const device = await this.#devices.device(userId, deviceId);
    if (device === undefined || device.deleted) return undefined;
    const owner = await this.#owner(userId, [device], settings);
    if (owner === "changed identity" || this.#verdict(device, owner, settings) !== "allowed")
      return undefined;
    if (await this.#devices.replacedSince([device], entry.record.createdAt)) return undefined;
    // From our own copy of the session: checked to hold this session's ratchet, as it must.
    const ours = await this.#inbound.get(roomId, sessionId);
    const own = this.#own.identityKeys;
    if (ours === undefined || ours.record.senderKey !== own.curve25519) return undefined;
    if (ours.session.firstKnownIndex > first) return undefined;
    const ratchet = entry.session.ratchetCopy();
    try {
      if (!ours.session.holdsRatchet(entry.session.messageIndex, ratchet)) return undefined;
    } finally {
      ratchet.fill(0);
    }
    return {
      device,
      exported: ours.session.exportAt(first),
      senderKey: own.curve25519,
      senderClaimedEd25519: own.ed25519,
    };
  }

  /**
   * `shareWith`: every device, cross-signed ones (or marked verified), or verified ones only. A
   * user we verified whose identity then changed (a violation) has no cross-signed devices until
   * the app accepts the new identity or withdraws the verification: it may be a server's.
   * A dehydrated device must be cross-signed by its owner whatever `shareWith` says (MSC3814:
   * clients must not encrypt to one that is not; its user does not see it to notice a forgery).
   */
  #meetsRequirement(
    d: DeviceRecord,
    identity: Parameters<CrossSigning["deviceTrust"]>[1],
    settings: ResolvedSettings,
  ): boolean {
    const dehydrated = isDehydrated(d);
    if (settings.shareWith === "all" && !dehydrated) return true;
    const trust = this.#crossSigning.deviceTrust(d, identity);
    const signedByOwner =
      trust.crossSigned && identity !== undefined && !this.#crossSigning.info(identity).violation;
    if (dehydrated && !signedByOwner) return false;
    if (settings.shareWith === "all") return true;
    if (settings.shareWith === "verified" || trust.verified) return trust.verified;
    return signedByOwner;
  }

  /**
   * Makes sure the room's session is shared with every device that should read it, rotating it
   * first when needed. Returns the to-device requests to send (room keys over Olm, and
   * `m.room_key.withheld` to refused devices); they also stay in `outgoingRequests()` until marked
   * sent. Devices we have no Olm session with are skipped here: claim keys first
   * (`OlmMachine.getMissingSessions`).
   */
  async share(
    roomId: string,
    members: readonly RoomMember[],
    settings: ResolvedSettings,
  ): Promise<{ requests: ToDeviceRequest[]; withoutSession: DeviceRecord[] }> {
    const versions = this.#versions();
    const current = this.#cache.get(roomId);
    if (
      current?.settled !== undefined &&
      stillSettled(current.settled, members, settings, versions) &&
      !this.#expired(current, settings)
    ) {
      return { requests: [], withoutSession: [] };
    }
    // (`shareWith` decides who is excluded; those get `m.room_key.withheld` with `m.unverified`.)
    const { allowed, refused, unverified } = await this.#recipientDevices(members, settings);
    const shared = isSharedHistory(settings.historyVisibility);
    let entry = await this.#get(roomId);
    if (entry !== undefined) {
      const allowedKeys = new Set(allowed.map((d) => deviceKey(d.userId, d.deviceId)));
      const holders = this.#holders(entry);
      // A holder's ID taken by a new device since (it was deleted): the old one lost access too.
      const lostAccess =
        holders.some((s) => !allowedKeys.has(deviceKey(s.userId, s.deviceId))) ||
        (await this.#devices.replacedSince(holders, entry.record.createdAt));
      // The spec (v1.19): a change of visibility across shared / not shared rotates the session.
      const flagChanged = (entry.record.sharedHistory === true) !== shared;
      if (lostAccess || flagChanged || this.#expired(entry, settings)) entry = undefined;
    }
    const created = entry === undefined;
    if (entry === undefined) entry = await this.#create(roomId, shared);

    const firstIndexes = this.#firstIndexes(entry);
    const toShare = allowed.filter((d) => !firstIndexes.has(deviceKey(d.userId, d.deviceId)));
    const requests: ToDeviceRequest[] = [];
    const withoutSession: DeviceRecord[] = [];
    const withSession: DeviceRecord[] = [];
    const index = entry.session.messageIndex;
    let batch: { device: DeviceRecord; content: Record<string, unknown>; index: number }[] = [];
    const newPending: Record<string, SharedWith> = {};
    const flush = (): void => {
      if (batch.length === 0) return;
      const messages: ToDeviceRequest["body"]["messages"] = {};
      for (const { device, content } of batch) entryOf(messages, device.userId)[device.deviceId] = content;
      const request = queueEncryptedToDevice(this.#ctx, messages, roomId);
      const shared: Record<string, Record<string, number>> = {};
      for (const { device, index } of batch) entryOf(shared, device.userId)[device.deviceId] = index;
      newPending[request.id] = shared;
      requests.push(request);
      batch = [];
    };
    if (toShare.length > 0) {
      // Built only when a device needs it: exporting the session key signs it (Ed25519), a cost
      // every send would otherwise pay while everyone holds the key already.
      const roomKey = {
        algorithm: MEGOLM_ALGORITHM,
        room_id: roomId,
        session_id: entry.session.sessionId,
        session_key: entry.session.sessionKey(),
        shared_history: shared,
        // matrix-rust-sdk (Element) reads the flag only under its own name.
        [RUST_SHARED_HISTORY_FIELD]: shared,
      };
      for (const device of toShare) {
        const content = await this.#olm.encrypt(device, "m.room_key", roomKey);
        if (content === undefined) {
          withoutSession.push(device);
          continue;
        }
        withSession.push(device);
        batch.push({ device, content: { ...content }, index });
        if (batch.length >= SHARE_BATCH_SIZE) flush();
      }
    }
    let again: DeviceRecord[] = [];
    if (!created) {
      const holding = allowed.filter((d) => firstIndexes.has(deviceKey(d.userId, d.deviceId)));
      again = await this.#olm.renewed.toReshare(holding, entry.record.sessionId, entry.record.createdAt);
      const reshared: DeviceRecord[] = [];
      for (const device of again) {
        const first = firstIndexes.get(deviceKey(device.userId, device.deviceId)) ?? index;
        const key = await this.#sessionKeyAt(entry, first);
        const content = await this.#olm.encrypt(device, "m.room_key", {
          algorithm: MEGOLM_ALGORITHM,
          room_id: roomId,
          session_id: entry.session.sessionId,
          session_key: key.sessionKey,
          shared_history: shared,
          [RUST_SHARED_HISTORY_FIELD]: shared,
        });
        if (content === undefined) continue;
        reshared.push(device);
        batch.push({ device, content: { ...content }, index: key.index });
        if (batch.length >= SHARE_BATCH_SIZE) flush();
      }
      await this.#olm.renewed.reshared(reshared, entry.record.sessionId);
    }
    flush();
    await this.#noOlm.established(withSession);

    const withheld = this.#withheldRequest(entry, roomId, [
      ...refused.map((d) => ({
        device: d,
        code: "m.blacklisted",
        reason: "You have been blocked by the sender",
      })),
      ...unverified.map((d) => ({
        device: d,
        code: "m.unverified",
        reason:
          settings.shareWith === "verified"
            ? "The sender only shares keys with verified devices"
            : "The sender only shares keys with cross-signed devices",
      })),
      ...(await this.#noOlm.toTell(withoutSession)).map((d) => ({
        device: d,
        code: NO_OLM_CODE,
        reason: "Unable to establish a secure channel",
      })),
    ]);
    if (withheld !== undefined) {
      requests.push(withheld.request);
      queueToDevice(this.#ctx, withheld.request);
    }
    const added: SharingUpdate = {
      ...(Object.keys(newPending).length > 0 ? { addPendingShares: newPending } : {}),
      ...(withheld !== undefined ? { addWithheldFrom: withheld.told } : {}),
    };
    entry.record = withSharing(entry.record, added);
    entry.settled = undefined;
    if (created) this.#save(entry);
    else if (requests.length > 0) this.#update(entry, added);
    // Otherwise nothing to send and nothing new: the record is unchanged, skip the write, and the
    // next share may skip the judging while nothing it read changes.
    else if (withoutSession.length === 0 && again.length === 0)
      entry.settled = settledShare(members, settings, versions);
    return { requests, withoutSession };
  }

  #withheldRequest(
    entry: OutboundEntry,
    roomId: string,
    targets: { device: DeviceRecord; code: string; reason: string }[],
  ): { request: ToDeviceRequest; told: Record<string, string[]> } | undefined {
    const already = new Set(
      Object.entries(entry.record.withheldFrom).flatMap(([userId, ids]) =>
        ids.map((deviceId) => deviceKey(userId, deviceId)),
      ),
    );
    const messages: ToDeviceRequest["body"]["messages"] = {};
    const told: Record<string, string[]> = {};
    let count = 0;
    for (const { device, code, reason } of targets) {
      const key = deviceKey(device.userId, device.deviceId);
      if (already.has(key)) continue;
      already.add(key);
      count++;
      const ids = told[device.userId] ?? [];
      ids.push(device.deviceId);
      told[device.userId] = ids;
      // `m.no_olm` is about the device, not this session: the spec (`m.room_key.withheld`) has it
      // name no room and no session, as matrix-rust-sdk sends it.
      entryOf(messages, device.userId)[device.deviceId] = {
        algorithm: MEGOLM_ALGORITHM,
        ...(code === NO_OLM_CODE ? {} : { room_id: roomId, session_id: entry.session.sessionId }),
        sender_key: this.#own.identityKeys.curve25519,
        code,
        reason,
      };
    }
    if (count === 0) return undefined;
    return {
      request: {
        id: newRequestId(),
        type: "to_device",
        eventType: "m.room_key.withheld",
        body: { messages },
      },
      told,
    };
  }

  async #create(roomId: string, shared: boolean): Promise<OutboundEntry> {
    const session = OutboundGroupSession.create();
    const pickle = session.toPickle();
    const entry: OutboundEntry = {
      session,
      record: {
        roomId,
        sessionId: session.sessionId,
        pickle,
        createdAt: this.#ctx.now(),
        messageCount: 0,
        sharedWith: {},
        pendingShares: {},
        withheldFrom: {},
        ...(shared ? { sharedHistory: true } : {}),
      },
      // Nothing reserved yet: the first message saves its reservation.
      reservedIndex: 0,
      stored: { pickle, messageCount: 0 },
    };
    this.#cache.set(roomId, entry);
    await addOwnInboundCopy(this.#inbound, this.#own, roomId, session, shared);
    return entry;
  }

  /** A room-key request was delivered: its devices hold the key now. */
  async markShared(roomId: string, requestId: string): Promise<void> {
    const entry = await this.#get(roomId);
    if (entry === undefined) return;
    if (!Object.hasOwn(entry.record.pendingShares, requestId)) return;
    const pending = entry.record.pendingShares[requestId];
    if (pending === undefined) return;
    const added: SharingUpdate = { addSharedWith: pending, settledShares: [requestId] };
    entry.record = withSharing(entry.record, added);
    entry.settled = undefined;
    this.#update(entry, added);
  }

  /** The IDs of the to-device requests still carrying the room's current key to its devices. */
  async pendingShares(roomId: string): Promise<string[]> {
    const entry = await this.#get(roomId);
    return entry === undefined ? [] : Object.keys(entry.record.pendingShares);
  }

  /**
   * Encrypts a room event with the room's shared session. With `beforeShares` the key may still
   * be on its way (the caller sends the `pendingShares` requests before the event); otherwise it
   * must have reached every device it was shared with. With `settings`, a session past its
   * rotation period is refused: only a share rotates it (the send plan shares just before).
   */
  async encrypt(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    beforeShares = false,
    settings?: ResolvedSettings,
  ): Promise<Record<string, unknown>> {
    const entry = await this.#get(roomId);
    if (entry === undefined) {
      throw new E2eeError("ROOM_KEY_NOT_SHARED", "no room key for this room: call shareRoomKey first");
    }
    if (settings !== undefined && this.#expired(entry, settings)) {
      throw new E2eeError(
        "ROOM_KEY_NOT_SHARED",
        "the room key reached its rotation period: call shareRoomKey first",
      );
    }
    if (!beforeShares && Object.keys(entry.record.pendingShares).length > 0) {
      throw new E2eeError(
        "ROOM_KEY_NOT_SHARED",
        "the room key is still being shared: send its to-device requests",
      );
    }
    const plaintext = roomEventPlaintext(roomId, type, content);
    // The stored ratchet must be past this index before the event can leave (saved in this step's
    // transaction when it is not yet): a crash can never make us encrypt again at an index used.
    if (entry.session.messageIndex >= entry.reservedIndex) this.#reserve(entry);
    const out = sealRoomEvent(entry.session, this.#echoes, roomId, plaintext, content, {
      senderKey: this.#own.identityKeys.curve25519,
      deviceId: this.#ctx.deviceId,
    });
    entry.record = { ...entry.record, messageCount: entry.record.messageCount + 1 };
    return out;
  }
}
