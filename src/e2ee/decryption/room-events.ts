/**
 * Decrypting `m.room.encrypted` room events (Megolm): the right inbound session, the payload's
 * room check, replay detection, and how far the sender can be trusted.
 */
import { MegolmError } from "../../crypto/megolm/index.ts";
import { utf8Decode } from "../../crypto/primitives/index.ts";
import type { MachineContext } from "../context.ts";
import type { IdentityState, UserIdentity } from "../cross-signing/identity.ts";
import type { CrossSigning } from "../cross-signing/manager.ts";
import { type DeviceRecord, MEGOLM_ALGORITHM } from "../devices/device.ts";
import type { DeviceManager } from "../devices/manager.ts";
import { DecryptionError } from "../errors.ts";
import type { OwnDevice } from "../identity/own-device.ts";
import { isId } from "../limits.ts";
import type { InboundEntry, InboundSessions } from "../room-keys/inbound.ts";
import type { SenderTrust } from "../trust/trust.ts";
import { isRecord } from "../util.ts";
import type { ReplayGuard } from "./replay.ts";

/** The parts of a room event decryption looks at. */
export interface EncryptedRoomEvent {
  readonly event_id: string;
  readonly sender: string;
  readonly type: string;
  readonly content: unknown;
  readonly origin_server_ts?: number;
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
  /** The sending device is cross-signed by its owner (our own device counts as such). */
  readonly senderCrossSigned: boolean;
  /** Where the sender's cross-signing identity stands (changed, violation: see `IdentityState`). */
  readonly senderIdentity: IdentityState;
  /** The key came from a forward, import or backup rather than from the sender. */
  readonly forwarded: boolean;
  readonly messageIndex: number;
}

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
  return { sessionId: c.session_id, ciphertext: c.ciphertext, deviceId: c.device_id };
}

interface MegolmPayload {
  readonly type: string;
  readonly content: Record<string, unknown>;
  readonly room_id: string;
}

/** The decrypted plaintext: JSON with a non-empty `type`, an object `content` and a `room_id`. */
function parsePayload(plaintext: Uint8Array): MegolmPayload {
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(plaintext));
  } catch {
    json = undefined;
  }
  if (
    !isRecord(json) ||
    typeof json.type !== "string" ||
    json.type === "" ||
    !isRecord(json.content) ||
    typeof json.room_id !== "string"
  ) {
    throw new DecryptionError("BAD_PAYLOAD", "the decrypted payload is not a valid event");
  }
  return { type: json.type, content: json.content, room_id: json.room_id };
}

/**
 * Whether events from devices not cross-signed by their owner are accepted: `"accept"` (marked
 * through `senderCrossSigned`) or `"refuse"` (`DecryptionError("SENDER_NOT_CROSS_SIGNED")`).
 */
export type SenderRequirement = "accept" | "refuse";

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

  constructor(
    ctx: MachineContext,
    own: OwnDevice,
    inbound: InboundSessions,
    devices: DeviceManager,
    crossSigning: CrossSigning,
    replays: ReplayGuard,
  ) {
    this.#ctx = ctx;
    this.#crossSigning = crossSigning;
    this.#replays = replays;
    this.#own = own;
    this.#inbound = inbound;
    this.#devices = devices;
  }

  async decrypt(
    event: EncryptedRoomEvent,
    roomId: string,
    requirement: SenderRequirement = "accept",
  ): Promise<DecryptedRoomEvent> {
    const parsed = parseMegolmEvent(event);
    // Memory first: awaiting the store for every event of a timeline costs more than the lookup.
    const entry =
      this.#inbound.cached(roomId, parsed.sessionId) ?? (await this.#inbound.get(roomId, parsed.sessionId));
    if (entry === undefined) {
      const withheld = await this.#ctx.store.getWithheld(roomId, parsed.sessionId);
      if (withheld !== undefined) {
        throw new DecryptionError("WITHHELD", "the sender withheld the key for this message", withheld.code);
      }
      throw new DecryptionError("UNKNOWN_SESSION", "the key for this message has not arrived");
    }
    let result: { plaintext: Uint8Array; messageIndex: number };
    try {
      result = entry.session.decrypt(parsed.ciphertext);
    } catch (e) {
      if (!(e instanceof MegolmError)) throw e;
      if (e.code === "UNKNOWN_MESSAGE_INDEX") {
        throw new DecryptionError("UNKNOWN_INDEX", "we hold this session only from a later message");
      }
      if (e.code === "BAD_SIGNATURE" || e.code === "BAD_MAC") {
        throw new DecryptionError("BAD_SIGNATURE", "the message failed its authenticity check");
      }
      throw new DecryptionError("MALFORMED_EVENT", "the ciphertext could not be decrypted");
    }
    const payload = parsePayload(result.plaintext);
    if (payload.room_id !== roomId) {
      throw new DecryptionError("ROOM_MISMATCH", "the message was encrypted for a different room");
    }
    // Every check that can reject the event runs before its index is recorded: a forged copy must
    // not claim the index and make the genuine event look like a replay.
    const sender = this.#senderTrust(event.sender, parsed.deviceId, entry);
    const { trust: deviceTrust, deviceId, device } = sender instanceof Promise ? await sender : sender;
    const verdictOrPromise = this.#crossSigningVerdict(event.sender, device, deviceId);
    const verdict = verdictOrPromise instanceof Promise ? await verdictOrPromise : verdictOrPromise;
    if (requirement === "refuse" && !verdict.crossSigned) {
      throw new DecryptionError(
        "SENDER_NOT_CROSS_SIGNED",
        "the sending device is not cross-signed by its owner",
      );
    }
    // A device cross-signed by a user we verified is as good as one marked verified.
    const trust: SenderTrust =
      deviceTrust === "unverified" && !entry.record.forwarded && verdict.verified ? "verified" : deviceTrust;
    const replay = this.#checkReplay(roomId, entry, result.messageIndex, event);
    if (replay !== undefined) await replay;
    return {
      type: payload.type,
      content: payload.content,
      roomId,
      eventId: event.event_id,
      sender: event.sender,
      senderDevice: deviceId,
      senderCurve25519: entry.record.senderKey,
      senderClaimedEd25519: entry.record.senderClaimedEd25519,
      trust,
      senderCrossSigned: verdict.crossSigned,
      senderIdentity: verdict.identity,
      forwarded: entry.record.forwarded,
      messageIndex: result.messageIndex,
    };
  }

  /** The sender's cross-signing standing; synchronous when their identity is in memory. */
  #crossSigningVerdict(
    sender: string,
    device: DeviceRecord | undefined,
    deviceId: string | undefined,
  ): CrossSigningVerdict | Promise<CrossSigningVerdict> {
    const cs = this.#crossSigning;
    const cached = cs.cachedIdentity(sender);
    const judge = (identity: UserIdentity | undefined): CrossSigningVerdict => {
      const identityState = cs.state(identity);
      if (device === undefined) {
        const ours = sender === this.#ctx.userId && deviceId === this.#ctx.deviceId;
        return { crossSigned: ours, verified: ours, identity: identityState };
      }
      const t = cs.deviceTrust(device, identity);
      return { crossSigned: t.crossSigned, verified: t.verified, identity: identityState };
    };
    if (cached !== null) return judge(cached);
    return cs.identity(sender).then(judge);
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
    const timestamp = typeof ts === "number" && Number.isSafeInteger(ts) ? ts : 0;
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
      return { trust: entry.record.forwarded ? "unverified" : "verified", deviceId: this.#ctx.deviceId };
    }
    const claimed =
      claimedDeviceId === undefined ? undefined : this.#devices.cachedDevice(sender, claimedDeviceId);
    if (claimed === null) return this.#senderTrustLoaded(sender, claimedDeviceId, entry);
    if (claimed?.curve25519 === senderKey)
      return judgeSender(sender, claimedDeviceId, entry, claimed, undefined);
    const owner = this.#devices.cachedDeviceByCurveKey(senderKey);
    if (owner === null) return this.#senderTrustLoaded(sender, claimedDeviceId, entry);
    return judgeSender(sender, claimedDeviceId, entry, claimed, owner);
  }

  async #senderTrustLoaded(
    sender: string,
    claimedDeviceId: string | undefined,
    entry: InboundEntry,
  ): Promise<SenderInfo> {
    const { senderKey } = entry.record;
    const claimed =
      claimedDeviceId === undefined ? undefined : await this.#devices.device(sender, claimedDeviceId);
    const owner =
      claimed?.curve25519 === senderKey ? undefined : await this.#devices.deviceByCurveKey(senderKey);
    return judgeSender(sender, claimedDeviceId, entry, claimed, owner);
  }
}

interface SenderInfo {
  readonly trust: SenderTrust;
  readonly deviceId: string | undefined;
  /** The device judged to have sent it (undefined for our own device and unknown ones). */
  readonly device?: DeviceRecord | undefined;
}

/**
 * The verdict from the two lookups: `claimed`, the device the event names; `owner`, the device
 * holding the session's curve key (looked up only when `claimed` does not hold it). The named
 * device settles who sent it when it really holds the key (a curve key alone is only a hint:
 * another device could list the same one in its keys).
 */
function judgeSender(
  sender: string,
  claimedDeviceId: string | undefined,
  entry: InboundEntry,
  claimed: DeviceRecord | undefined,
  owner: DeviceRecord | undefined,
): SenderInfo {
  const { senderKey, senderClaimedEd25519, forwarded } = entry.record;
  let named = claimed?.curve25519 === senderKey ? claimed : undefined;
  if (named === undefined) {
    // The session was made by a device of someone else: the event's sender is forged.
    if (owner !== undefined && owner.userId !== sender) {
      throw new DecryptionError("MISMATCHED_SENDER", "the message's session belongs to another user");
    }
    named = claimed ?? owner;
  }
  if (named === undefined) return { trust: "unknown_device", deviceId: claimedDeviceId };
  if (named.curve25519 !== senderKey || named.ed25519 !== senderClaimedEd25519) {
    return { trust: "mismatched_sender_key", deviceId: named.deviceId };
  }
  if (forwarded || named.trust !== "verified")
    return { trust: "unverified", deviceId: named.deviceId, device: named };
  return { trust: "verified", deviceId: named.deviceId, device: named };
}
