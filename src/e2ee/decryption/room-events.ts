/**
 * Decrypting `m.room.encrypted` room events (Megolm): the right inbound session, the payload's
 * room check, replay detection, and how far the sender can be trusted.
 */
import type { SenderRequirement } from "../../store/records.ts";

export type { SenderRequirement };

import { MegolmError } from "../../crypto/megolm/index.ts";
import { asyncPrimitivesFaster, utf8Decode } from "../../crypto/primitives/index.ts";
import type { WithheldRecord } from "../../store/records.ts";
import { isRecord, MAX_EVENT_DEPTH, storableWithin } from "../../wire/json.ts";
import type { IdentityState, UserIdentity } from "../cross-signing/identity.ts";
import type { CrossSigning } from "../cross-signing/manager.ts";
import { type DeviceRecord, MEGOLM_ALGORITHM } from "../devices/device.ts";
import type { DeviceManager } from "../devices/manager.ts";
import { DecryptionError } from "../errors.ts";
import type { OwnDevice } from "../identity/own-device.ts";
import { isId, MAX_ROOM_EVENT_CIPHERTEXT_BYTES } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";
import type { InboundEntry, InboundSessions } from "../room-keys/inbound.ts";
import { NO_OLM_CODE } from "../room-keys/no-olm.ts";
import type { SenderTrust } from "../trust/trust.ts";
import { isVerificationEvent } from "../verification/events.ts";
import type { OwnEchoes } from "./own-echoes.ts";
import type { ReplayGuard } from "./replay.ts";

/** The parts of a room event decryption looks at. */
export interface EncryptedRoomEvent {
  readonly event_id: string;
  readonly sender: string;
  readonly type: string;
  readonly content: unknown;
  readonly origin_server_ts?: number;
}

/**
 * Events of a `tryDecryptRoomEvents` batch whose sessions are read from the store at once: the
 * records read ahead (a few KB each) are held only until those events are decrypted.
 */
export const DECRYPT_PREFETCH_EVENTS = 1000;

/** One event of a batch handed to `OlmMachine.tryDecryptRoomEvents`, with the room it is in. */
export interface RoomEventToDecrypt {
  readonly event: EncryptedRoomEvent;
  readonly roomId: string;
}

export interface DecryptedRoomEvent {
  readonly type: string;
  readonly content: Record<string, unknown>;
  readonly roomId: string;
  readonly eventId: string;
  readonly sender: string;
  /** The device that sent it, when we know it. */
  readonly senderDevice: string | undefined;
  readonly senderCurve25519: string;
  readonly senderClaimedEd25519: string;
  readonly trust: SenderTrust;
  /**
   * The sending device is cross-signed by its owner (our own device counts as such); never for a
   * key from a forward, import or backup, which only names a device.
   */
  readonly senderCrossSigned: boolean;
  /** Where the sender's cross-signing identity stands (changed, violation: see `IdentityState`). */
  readonly senderIdentity: IdentityState;
  /** The key came from a forward, import or backup rather than from the sender. */
  readonly forwarded: boolean;
  /**
   * For a forwarded key: the device that gave it to us (the last of its forwarding chain) and
   * its owner when we know the device, e.g. the inviter whose history-sharing bundle it came in.
   * We have only their word for who sent the event.
   */
  readonly keysFrom?: KeysFrom;
  readonly messageIndex: number;
  /** The event as it was handed in (what a client re-emits whole once a late key decrypts it). */
  readonly encrypted: EncryptedRoomEvent;
}

export interface KeysFrom {
  readonly curve25519: string;
  readonly userId: string | undefined;
  readonly deviceId: string | undefined;
}

/** A decryption's outcome: failures are values, with the reason as a `DecryptionError`. */
export type RoomEventDecryption =
  | { readonly ok: true; readonly event: DecryptedRoomEvent }
  | {
      readonly ok: false;
      readonly error: DecryptionError;
      /**
       * With `SENDER_NOT_CROSS_SIGNED`, when the event is a verification event
       * (`m.key.verification.*`, or an `m.room.message` request): the event, for the verification
       * flow alone, never to be shown. Verifying is how such a device comes to be trusted, and the
       * flow authenticates the keys itself (the SAS or QR code MACs), not by the sender's trust.
       */
      readonly verificationEvent?: DecryptedRoomEvent;
    };

export interface ParsedMegolmEvent {
  readonly sessionId: string;
  readonly ciphertext: string;
  readonly deviceId: string | undefined;
}

// Checked by hand rather than with a schema: this runs once per timeline event, and a schema
// library's generic walk cost more than the rest of the non-cryptographic work together.
export function parseMegolmEvent(event: EncryptedRoomEvent): ParsedMegolmEvent {
  const c = event.content;
  if (
    !isRecord(c) ||
    typeof c.algorithm !== "string" ||
    typeof c.ciphertext !== "string" ||
    !isId(c.session_id) ||
    !(c.sender_key === undefined || typeof c.sender_key === "string") ||
    !(c.device_id === undefined || isId(c.device_id)) ||
    !isId(event.event_id) ||
    !isId(event.sender)
  ) {
    throw new DecryptionError("MALFORMED_EVENT", "not a well-formed encrypted room event");
  }
  if (c.algorithm !== MEGOLM_ALGORITHM) {
    throw new DecryptionError("UNSUPPORTED_ALGORITHM", "unsupported room encryption algorithm");
  }
  // Base64 is ASCII: its length in UTF-16 units is at most its length in bytes.
  if (c.ciphertext.length > MAX_ROOM_EVENT_CIPHERTEXT_BYTES) {
    throw new DecryptionError("TOO_LARGE", "the ciphertext is larger than any event can be");
  }
  return { sessionId: c.session_id, ciphertext: c.ciphertext, deviceId: c.device_id };
}

interface MegolmPayload {
  readonly type: string;
  readonly content: Record<string, unknown>;
  readonly room_id: string;
}

/** The decrypted plaintext: JSON with a non-empty `type`, an object `content` and a `room_id`. */
function parsePayload(plaintext: Uint8Array | string): MegolmPayload {
  let json: unknown;
  try {
    json = JSON.parse(typeof plaintext === "string" ? plaintext : utf8Decode(plaintext));
  } catch {
    json = undefined;
  }
  if (
    !isRecord(json) ||
    typeof json.type !== "string" ||
    json.type === "" ||
    !isRecord(json.content) ||
    typeof json.room_id !== "string" ||
    !storableWithin(json, MAX_EVENT_DEPTH)
  ) {
    throw new DecryptionError("BAD_PAYLOAD", "the decrypted payload is not a valid event");
  }
  return { type: json.type, content: json.content, room_id: json.room_id };
}

interface CrossSigningVerdict {
  readonly crossSigned: boolean;
  readonly verified: boolean;
  readonly identity: IdentityState;
}

function replayVerdict(admitted: boolean): void {
  if (!admitted)
    throw new DecryptionError("REPLAYED", "this message index was already used by another event");
}

export class RoomEventDecryptor {
  readonly #ctx: MachineContext;
  readonly #inbound: InboundSessions;
  readonly #devices: DeviceManager;
  readonly #own: OwnDevice;
  readonly #replays: ReplayGuard;
  readonly #crossSigning: CrossSigning;
  readonly #echoes: OwnEchoes;

  constructor(
    ctx: MachineContext,
    own: OwnDevice,
    inbound: InboundSessions,
    devices: DeviceManager,
    crossSigning: CrossSigning,
    replays: ReplayGuard,
    echoes: OwnEchoes,
  ) {
    this.#ctx = ctx;
    this.#echoes = echoes;
    this.#crossSigning = crossSigning;
    this.#replays = replays;
    this.#own = own;
    this.#inbound = inbound;
    this.#devices = devices;
  }

  /**
   * Reads the stored sessions these events need, in one store call, ahead of decrypting them in
   * the same step (see `InboundSessions.prefetch`). Malformed events are left to `decrypt`.
   */
  async prefetch(events: readonly RoomEventToDecrypt[]): Promise<void> {
    const keys: { roomId: string; sessionId: string }[] = [];
    const senders = new Set<string>();
    for (const { event, roomId } of events) {
      const c = isRecord(event) ? event.content : undefined;
      const sessionId = isRecord(c) ? c.session_id : undefined;
      if (isId(sessionId) && isId(roomId)) keys.push({ roomId, sessionId });
      const sender = isRecord(event) ? event.sender : undefined;
      if (isId(sender)) senders.add(sender);
    }
    const fromStore = await this.#inbound.prefetch(keys);
    // The senders' devices too, in one read, for the sender checks (those in memory are skipped).
    await this.#devices.prefetchUsers(senders);
    // Their replay records too, in one read, for the sessions whose records memory lacks: those
    // just read from the store or kept from an import, and those in memory whose records were
    // never read.
    const states = fromStore.map((k) => this.#replays.session(k.roomId, k.sessionId));
    for (const { roomId, sessionId } of keys) {
      const entry = this.#inbound.cached(roomId, sessionId);
      // Kept from an import (see `InboundSessions.savedNotNew`): read ahead as those from the store.
      if (entry === undefined && this.#inbound.savedNotNew(roomId, sessionId))
        states.push(this.#replays.session(roomId, sessionId));
      const state = entry?.replays;
      if (state !== undefined && !state.dropped && !state.loaded && !state.complete) states.push(state);
    }
    await this.#replays.preload(this.#ctx.store, states);
  }

  /**
   * Decrypts a room event. A failure is a value from here on: the checks below throw their
   * `DecryptionError` and this is the one place it is caught. Synchronous when memory holds
   * everything the event needs (see `#decrypt`).
   */
  decrypt(
    event: EncryptedRoomEvent,
    roomId: string,
    requirement: SenderRequirement = "accept",
  ): RoomEventDecryption | Promise<RoomEventDecryption> {
    let decrypted: DecryptedRoomEvent | Promise<DecryptedRoomEvent>;
    try {
      decrypted = this.#decrypt(event, roomId, requirement);
    } catch (e) {
      return this.#failed(event, roomId, requirement, e);
    }
    if (!(decrypted instanceof Promise)) return { ok: true, event: decrypted };
    return decrypted.then(
      (ok): RoomEventDecryption => ({ ok: true, event: ok }),
      (e: unknown) => this.#failed(event, roomId, requirement, e),
    );
  }

  /** What a failure of `#decrypt` makes of the event: its outcome, or a rival copy's second try. */
  #failed(
    event: EncryptedRoomEvent,
    roomId: string,
    requirement: SenderRequirement,
    e: unknown,
  ): RoomEventDecryption | Promise<RoomEventDecryption> {
    if (!(e instanceof DecryptionError)) throw e;
    if (e.code !== "MISMATCHED_SENDER") return failure(e);
    return this.#promoteAndDecrypt(event, roomId, requirement, e);
  }

  /**
   * Our copy of the session names another creator than the event's sender. If the sender's own
   * device shared it too (a rival copy), and no event decrypted under our copy's claim yet, the
   * event settles which share was genuine: that copy is promoted and the event decrypted again
   * with it. Once one did, the claim stays: the event's sender is not part of what the session
   * signs, so anyone holding the key (every member) can post a copy of the creator's ciphertext
   * under their own name, and after a re-share of their own that copy would take the session.
   */
  async #promoteAndDecrypt(
    event: EncryptedRoomEvent,
    roomId: string,
    requirement: SenderRequirement,
    mismatch: DecryptionError,
  ): Promise<RoomEventDecryption> {
    try {
      const { sessionId } = parseMegolmEvent(event);
      const promoted = await this.#inbound.promoteRival(roomId, sessionId, {
        settled: () => this.#replays.anyRecorded(this.#ctx.store, roomId, sessionId),
        ownsKey: async (senderKey, ed25519) => {
          const device = await this.#devices.userDeviceByCurveKey(event.sender, senderKey);
          return device !== undefined && device.ed25519Key === ed25519;
        },
      });
      if (!promoted) return { ok: false, error: mismatch };
      return { ok: true, event: await this.#decrypt(event, roomId, requirement) };
    } catch (e) {
      if (e instanceof DecryptionError) return failure(e);
      throw e;
    }
  }

  /**
   * Synchronous when memory holds everything the event needs (a timeline's usual case: no async
   * frame, promise or closure per event); otherwise the rest runs in `#decryptLoading` or
   * `#judgeLoading`, from where this left off.
   */
  #decrypt(
    event: EncryptedRoomEvent,
    roomId: string,
    requirement: SenderRequirement,
  ): DecryptedRoomEvent | Promise<DecryptedRoomEvent> {
    const parsed = parseMegolmEvent(event);
    // Memory first: awaiting the store for every event of a timeline costs more than the lookup.
    const entry = this.#inbound.cachedOrPrefetched(roomId, parsed.sessionId);
    // In browsers the async form runs the signature check, key derivation, MAC and AES in Web
    // Crypto (several times faster than JavaScript there); on Node the synchronous one is faster.
    if (entry === undefined || asyncPrimitivesFaster) {
      return this.#decryptLoading(event, roomId, requirement, parsed, entry);
    }
    const result = this.#echoResult(event, roomId, entry) ?? megolmDecrypt(entry, parsed.ciphertext);
    return this.#judge(event, roomId, requirement, parsed, entry, result);
  }

  /**
   * Our own event coming back: when the session holds the ratchet it was encrypted with,
   * decryption would give the plaintext we hold (see own-echoes.ts); the checks after it still
   * run. Undefined when the event must be decrypted.
   */
  #echoResult(event: EncryptedRoomEvent, roomId: string, entry: InboundEntry): MegolmResult | undefined {
    const echo =
      this.#echoes.size > 0 && isRecord(event.content)
        ? this.#echoes.match(roomId, event.content)
        : undefined;
    if (echo === undefined) return undefined;
    // The session must be the one the echo names (its ID is its signing key, which the signature
    // check would have used), not only hold the ratchet: a stored session under a wrong ID fails.
    const held =
      entry.session.sessionId === echo.sessionId &&
      entry.session.holdsRatchet(echo.messageIndex, echo.ratchet);
    const result = held ? { plaintext: echo.plaintext, messageIndex: echo.messageIndex } : undefined;
    this.#echoes.take(echo);
    return result;
  }

  async #decryptLoading(
    event: EncryptedRoomEvent,
    roomId: string,
    requirement: SenderRequirement,
    parsed: ParsedMegolmEvent,
    cached: InboundEntry | undefined,
  ): Promise<DecryptedRoomEvent> {
    const entry = cached ?? (await this.#inbound.get(roomId, parsed.sessionId));
    if (entry === undefined) {
      // A notice of this step (not saved yet) first: the events waiting on its session are retried in it.
      const withheld =
        this.#ctx.tx.withheld.findLast((w) => w.roomId === roomId && w.sessionId === parsed.sessionId) ??
        (await this.#ctx.store.getWithheld(roomId, parsed.sessionId));
      if (withheld !== undefined && (await this.#withheldBySender(withheld, event, parsed))) {
        throw new DecryptionError("WITHHELD", "the sender withheld the key for this message", withheld.code);
      }
      if (await this.#noOlmBefore(event, parsed)) {
        throw new DecryptionError(
          "WITHHELD",
          "the sender's device could not set up a secure channel with this device",
          NO_OLM_CODE,
        );
      }
      if (this.#inbound.isDamaged(roomId, parsed.sessionId)) {
        throw new DecryptionError(
          "UNKNOWN_SESSION",
          "the stored key for this message is damaged (corrupted or tampered crypto store); waiting for a good copy",
        );
      }
      throw new DecryptionError("UNKNOWN_SESSION", "the key for this message has not arrived");
    }
    let result = this.#echoResult(event, roomId, entry);
    if (result === undefined && asyncPrimitivesFaster) {
      try {
        result = await entry.session.decryptAsync(parsed.ciphertext);
      } catch (e) {
        throw megolmFailure(e);
      }
    }
    result ??= megolmDecrypt(entry, parsed.ciphertext);
    return this.#judge(event, roomId, requirement, parsed, entry, result);
  }

  /**
   * The checks after decryption, then the event. Every check that can reject the event runs
   * before its index is recorded: a forged copy must not claim the index and make the genuine
   * event look like a replay.
   */
  #judge(
    event: EncryptedRoomEvent,
    roomId: string,
    requirement: SenderRequirement,
    parsed: ParsedMegolmEvent,
    entry: InboundEntry,
    result: MegolmResult,
  ): DecryptedRoomEvent | Promise<DecryptedRoomEvent> {
    const payload = parsePayload(result.plaintext);
    if (payload.room_id !== roomId) {
      throw new DecryptionError("ROOM_MISMATCH", "the message was encrypted for a different room");
    }
    const sender = this.#senderTrust(event.sender, parsed.deviceId, entry);
    const keysFrom = entry.record.forwarded ? this.#cachedKeysFrom(entry.record.forwardingChain) : undefined;
    if (sender instanceof Promise || keysFrom === null) {
      return this.#judgeLoading(event, roomId, requirement, entry, result, payload, sender);
    }
    const verdict = this.#crossSigningVerdict(event.sender, sender.device, sender.ownDevice === true);
    if (verdict instanceof Promise) {
      return this.#judgeLoading(event, roomId, requirement, entry, result, payload, sender, verdict);
    }
    const exempt = refusedVerification(requirement, entry, verdict, payload);
    const trust = exempt ? sender.trust : judgeTrust(requirement, entry, sender, verdict);
    const replay = this.#checkReplay(roomId, entry, result.messageIndex, event);
    if (replay === undefined) {
      return unlessExempt(
        decryptedEvent(event, roomId, entry, result, payload, sender, trust, verdict, keysFrom),
        exempt,
      );
    }
    return replay.then(() =>
      unlessExempt(
        decryptedEvent(event, roomId, entry, result, payload, sender, trust, verdict, keysFrom),
        exempt,
      ),
    );
  }

  /** `#judge` once a look-up it needs is in the store (or the key was forwarded). */
  async #judgeLoading(
    event: EncryptedRoomEvent,
    roomId: string,
    requirement: SenderRequirement,
    entry: InboundEntry,
    result: MegolmResult,
    payload: MegolmPayload,
    senderOrPromise: SenderInfo | Promise<SenderInfo>,
    verdictOrPromise?: CrossSigningVerdict | Promise<CrossSigningVerdict>,
  ): Promise<DecryptedRoomEvent> {
    const sender = senderOrPromise instanceof Promise ? await senderOrPromise : senderOrPromise;
    const verdict = await (verdictOrPromise ??
      this.#crossSigningVerdict(event.sender, sender.device, sender.ownDevice === true));
    const exempt = refusedVerification(requirement, entry, verdict, payload);
    const trust = exempt ? sender.trust : judgeTrust(requirement, entry, sender, verdict);
    const replay = this.#checkReplay(roomId, entry, result.messageIndex, event);
    if (replay !== undefined) await replay;
    const keysFrom = entry.record.forwarded ? await this.#keysFrom(entry.record.forwardingChain) : undefined;
    return unlessExempt(
      decryptedEvent(event, roomId, entry, result, payload, sender, trust, verdict, keysFrom),
      exempt,
    );
  }

  /** `#keysFrom` from memory alone: null when only the store can tell. */
  #cachedKeysFrom(chain: readonly string[]): KeysFrom | undefined | null {
    const curve25519 = chain[chain.length - 1];
    if (curve25519 === undefined) return undefined;
    const device = this.#devices.cachedDeviceByCurveKey(curve25519);
    return device === null ? null : { curve25519, userId: device.userId, deviceId: device.deviceId };
  }

  /** Who forwarded a key to us: the chain's last device, its owner looked up when we know it. */
  async #keysFrom(chain: readonly string[]): Promise<KeysFrom | undefined> {
    const curve25519 = chain[chain.length - 1];
    if (curve25519 === undefined) return undefined;
    const device =
      this.#devices.cachedDeviceByCurveKey(curve25519) ?? (await this.#devices.deviceByCurveKey(curve25519));
    return { curve25519, userId: device?.userId, deviceId: device?.deviceId };
  }

  /** The sender's cross-signing standing; synchronous when their identity is in memory. */
  #crossSigningVerdict(
    sender: string,
    device: DeviceRecord | undefined,
    ownDevice: boolean,
  ): CrossSigningVerdict | Promise<CrossSigningVerdict> {
    const cached = this.#crossSigning.cachedIdentity(sender);
    // No closure on the usual path: this runs once per event.
    if (cached !== null) return this.#judgeCrossSigning(device, ownDevice, cached);
    return this.#crossSigning
      .identity(sender)
      .then((identity) => this.#judgeCrossSigning(device, ownDevice, identity));
  }

  #judgeCrossSigning(
    device: DeviceRecord | undefined,
    ownDevice: boolean,
    identity: UserIdentity | undefined,
  ): CrossSigningVerdict {
    const cs = this.#crossSigning;
    const identityState = cs.state(identity);
    // Our own device only when the session is ours (the device ID an event names is only a claim).
    if (device === undefined) return { crossSigned: ownDevice, verified: ownDevice, identity: identityState };
    const t = cs.deviceTrust(device, identity);
    return { crossSigned: t.crossSigned, verified: t.verified, identity: identityState };
  }

  /**
   * Only the session's own sender may say it withheld the key: the notice must come from the
   * event's sender, and the curve key it names (when it names one) must be the one the event names
   * or a key of the device the event names. Anyone else's notice changes nothing.
   */
  async #withheldBySender(
    withheld: WithheldRecord,
    event: EncryptedRoomEvent,
    parsed: ParsedMegolmEvent,
  ): Promise<boolean> {
    if (withheld.sender !== event.sender) return false;
    if (withheld.senderKey === undefined) return true;
    const content = event.content as { sender_key?: unknown };
    if (typeof content.sender_key === "string") return content.sender_key === withheld.senderKey;
    if (parsed.deviceId === undefined) return true;
    const device = await this.#devices.device(event.sender, parsed.deviceId);
    return device === undefined || device.curve25519Key === withheld.senderKey;
  }

  /**
   * Whether the event's device told us `m.no_olm` (it could not set up an Olm session with us)
   * after the event was sent: the spec lets that notice stand for every message sent before it.
   * The device is the one whose curve key the event names, or the one its `device_id` names.
   */
  async #noOlmBefore(event: EncryptedRoomEvent, parsed: ParsedMegolmEvent): Promise<boolean> {
    const content = event.content as { sender_key?: unknown };
    const senderKey =
      typeof content.sender_key === "string"
        ? content.sender_key
        : parsed.deviceId === undefined
          ? undefined
          : (await this.#devices.device(event.sender, parsed.deviceId))?.curve25519Key;
    if (senderKey === undefined) return false;
    const notice = await this.#inbound.noOlm.from(event.sender, senderKey);
    if (notice === undefined) return false;
    const sentAt = event.origin_server_ts;
    return sentAt === undefined || sentAt <= notice.receivedAt;
  }

  /**
   * One message index, one event: the same ciphertext under another event ID is a replay.
   * Synchronous when memory can tell.
   */
  #checkReplay(
    roomId: string,
    entry: InboundEntry,
    messageIndex: number,
    event: EncryptedRoomEvent,
  ): void | Promise<void> {
    // The event passed every check under our copy's claim: no rival copy can be promoted now.
    if (this.#inbound.hasRivals(roomId, entry.record.sessionId))
      this.#inbound.dropRivals(roomId, entry.record.sessionId);
    let state = entry.replays;
    if (state === undefined || state.dropped) {
      const sessionId = entry.record.sessionId;
      // Only the first state for a session new to this process may claim to know everything.
      state =
        state === undefined && entry.createdHere === true
          ? this.#replays.fresh(roomId, sessionId)
          : this.#replays.session(roomId, sessionId);
      entry.replays = state;
    }
    const ts = event.origin_server_ts;
    const timestamp = typeof ts === "number" && Number.isSafeInteger(ts) && ts >= 0 ? ts : 0;
    const cached = this.#replays.admitCached(state, messageIndex, event.event_id, timestamp);
    if (cached !== undefined) return replayVerdict(cached);
    return this.#replays
      .admit(this.#ctx.store, state, messageIndex, event.event_id, timestamp)
      .then(replayVerdict);
  }

  /**
   * Who sent the event and how far we trust that. Synchronous when the devices involved are in
   * memory (a timeline's usual case); otherwise it loads them first.
   */
  #senderTrust(
    sender: string,
    claimedDeviceId: string | undefined,
    entry: InboundEntry,
  ): SenderInfo | Promise<SenderInfo> {
    const { senderKey } = entry.record;
    if (senderKey === this.#own.identityKeys.curve25519 && sender === this.#ctx.userId) {
      return {
        trust: fromSender(entry.record) ? "verified" : "unverified",
        deviceId: this.#ctx.deviceId,
        ownDevice: true,
      };
    }
    const claimed =
      claimedDeviceId === undefined ? undefined : this.#devices.cachedDevice(sender, claimedDeviceId);
    if (claimed === null) return this.#senderTrustLoaded(sender, claimedDeviceId, entry);
    if (claimed?.curve25519Key === senderKey) return judgeSender(claimedDeviceId, entry, claimed);
    const own = this.#devices.cachedUserDeviceByCurveKey(sender, senderKey);
    if (own === null) return this.#senderTrustLoaded(sender, claimedDeviceId, entry);
    if (own !== undefined) return judgeSender(claimedDeviceId, entry, claimed, own);
    return this.#senderTrustLoaded(sender, claimedDeviceId, entry);
  }

  async #senderTrustLoaded(
    sender: string,
    claimedDeviceId: string | undefined,
    entry: InboundEntry,
  ): Promise<SenderInfo> {
    const { senderKey, senderClaimedEd25519 } = entry.record;
    const claimed =
      claimedDeviceId === undefined ? undefined : await this.#devices.device(sender, claimedDeviceId);
    if (claimed?.curve25519Key === senderKey) return judgeSender(claimedDeviceId, entry, claimed);
    const own = await this.#devices.userDeviceByCurveKey(sender, senderKey);
    if (own !== undefined) return judgeSender(claimedDeviceId, entry, claimed, own);
    // No device of the sender holds the session's key. If a device of someone else provably
    // made the session (it holds the key *and* the Ed25519 key the session was shared with; a
    // device merely listing another's curve key cannot have that), the event's sender is forged.
    const other = await this.#devices.deviceByCurveKey(senderKey);
    if (other !== undefined && other.userId !== sender && other.ed25519Key === senderClaimedEd25519) {
      throw new DecryptionError("MISMATCHED_SENDER", "the message's session belongs to another user");
    }
    return judgeSender(claimedDeviceId, entry, claimed, undefined);
  }
}

interface MegolmResult {
  readonly plaintext: Uint8Array | string;
  readonly messageIndex: number;
}

/** A Megolm failure as the event's outcome. */
function megolmFailure(e: unknown): unknown {
  if (!(e instanceof MegolmError)) return e;
  if (e.code === "UNKNOWN_MESSAGE_INDEX") {
    return new DecryptionError("UNKNOWN_INDEX", "we hold this session only from a later message");
  }
  if (e.code === "BAD_SIGNATURE" || e.code === "BAD_MAC") {
    return new DecryptionError("BAD_SIGNATURE", "the message failed its authenticity check");
  }
  return new DecryptionError("MALFORMED_EVENT", "the ciphertext could not be decrypted");
}

function megolmDecrypt(entry: InboundEntry, ciphertext: string): MegolmResult {
  try {
    return entry.session.decrypt(ciphertext);
  } catch (e) {
    throw megolmFailure(e);
  }
}

const NOT_CROSS_SIGNED = "the sending device is not cross-signed by its owner";

/** A refused sender's verification event, on its way to `RoomEventDecryption.verificationEvent`. */
class RefusedVerificationEvent extends DecryptionError {
  readonly event: DecryptedRoomEvent;
  constructor(event: DecryptedRoomEvent) {
    super("SENDER_NOT_CROSS_SIGNED", NOT_CROSS_SIGNED);
    this.event = event;
  }
}

/** A failure's outcome; a refused verification event is handed on beside a plain error. */
function failure(e: DecryptionError): RoomEventDecryption {
  if (!(e instanceof RefusedVerificationEvent)) return { ok: false, error: e };
  return { ok: false, error: new DecryptionError(e.code, e.message), verificationEvent: e.event };
}

/** Whether the requirement refuses the sender of what is a verification event (see `verificationEvent`). */
function refusedVerification(
  requirement: SenderRequirement,
  entry: InboundEntry,
  verdict: CrossSigningVerdict,
  payload: MegolmPayload,
): boolean {
  return (
    requirement === "refuse" &&
    !senderCrossSigned(entry, verdict) &&
    isVerificationEvent(payload.type, payload.content)
  );
}

/** The event, or for a refused sender's verification event the refusal carrying it. */
function unlessExempt(event: DecryptedRoomEvent, exempt: boolean): DecryptedRoomEvent {
  if (exempt) throw new RefusedVerificationEvent(event);
  return event;
}

/** The sender's trust as the event reports it; throws when the requirement refuses the sender. */
function judgeTrust(
  requirement: SenderRequirement,
  entry: InboundEntry,
  sender: SenderInfo,
  verdict: CrossSigningVerdict,
): SenderTrust {
  if (requirement === "refuse" && !senderCrossSigned(entry, verdict)) {
    throw new DecryptionError("SENDER_NOT_CROSS_SIGNED", NOT_CROSS_SIGNED);
  }
  // A device cross-signed by a user we verified is as good as one marked verified.
  return sender.trust === "unverified" && fromSender(entry.record) && verdict.verified
    ? "verified"
    : sender.trust;
}

function decryptedEvent(
  event: EncryptedRoomEvent,
  roomId: string,
  entry: InboundEntry,
  result: MegolmResult,
  payload: MegolmPayload,
  sender: SenderInfo,
  trust: SenderTrust,
  verdict: CrossSigningVerdict,
  keysFrom?: KeysFrom,
): DecryptedRoomEvent {
  const decrypted: DecryptedRoomEvent = {
    type: payload.type,
    content: payload.content,
    roomId,
    eventId: event.event_id,
    sender: event.sender,
    senderDevice: sender.deviceId,
    senderCurve25519: entry.record.senderKey,
    senderClaimedEd25519: entry.record.senderClaimedEd25519,
    trust,
    senderCrossSigned: senderCrossSigned(entry, verdict),
    senderIdentity: verdict.identity,
    forwarded: !fromSender(entry.record),
    messageIndex: result.messageIndex,
    encrypted: event,
  };
  return keysFrom === undefined ? decrypted : { ...decrypted, keysFrom };
}

/**
 * Whether the session came from its creator's own device (`m.room_key` over Olm, or made here).
 * A forward, an import or a backup only repeats a claim of who created it: a key file or a backup
 * entry (which anyone holding the backup's public key, the server included, can write) may name
 * any device, so events it decrypts are never better than `unverified`.
 */
function fromSender(record: { readonly forwarded: boolean; readonly imported: boolean }): boolean {
  return !record.forwarded && !record.imported;
}

/**
 * Whether the event comes from a device its owner cross-signed. A key from a forward, an import or
 * a backup only names a device (whoever wrote it may name any), so it never counts as one.
 */
function senderCrossSigned(entry: InboundEntry, verdict: CrossSigningVerdict): boolean {
  return verdict.crossSigned && fromSender(entry.record);
}

interface SenderInfo {
  readonly trust: SenderTrust;
  readonly deviceId: string | undefined;
  /** The device judged to have sent it (undefined for our own device and unknown ones). */
  readonly device?: DeviceRecord | undefined;
  /** The session is our own device's (its Curve25519 key is ours). */
  readonly ownDevice?: boolean;
}

/**
 * The verdict from the two lookups: `claimed`, the device the event names; `own`, the sender's
 * device holding the session's curve key (looked up only when `claimed` does not hold it). The
 * named device settles who sent it when it really holds the key.
 */
function judgeSender(
  claimedDeviceId: string | undefined,
  entry: InboundEntry,
  claimed: DeviceRecord | undefined,
  own?: DeviceRecord,
): SenderInfo {
  const { senderKey, senderClaimedEd25519 } = entry.record;
  // A named device that does not hold the key makes the event's claims inconsistent.
  const named = claimed ?? own;
  if (named === undefined) return { trust: "unknown_device", deviceId: claimedDeviceId };
  if (named.curve25519Key !== senderKey || named.ed25519Key !== senderClaimedEd25519) {
    return { trust: "mismatched_sender_key", deviceId: named.deviceId };
  }
  if (!fromSender(entry.record) || named.trust !== "verified")
    return { trust: "unverified", deviceId: named.deviceId, device: named };
  return { trust: "verified", deviceId: named.deviceId, device: named };
}
