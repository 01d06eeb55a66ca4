/**
 * Processing the to-device events of one sync: Olm decryption and its checks, room keys, forwarded
 * keys, withheld notices and key requests. Everything else passes through to the caller.
 */

import type { RoomSessionKey } from "../../store/records.ts";
import { isRecord } from "../../wire/json.ts";
import type { UndecryptableRoomEvent } from "../decryption/redecrypt.ts";
import type { DecryptedRoomEvent } from "../decryption/room-events.ts";
import { isDehydrated } from "../devices/device.ts";
import type { ToDeviceFailureCode } from "../errors.ts";
import { isRoomKeyBundleType, parseReceivedBundle } from "../history-sharing/bundle.ts";
import type { HeldKeyRequest } from "../key-requests/held.ts";
import { isId } from "../limits.ts";
import type { Parts } from "../machine-parts.ts";
import type { DamagedOlmSession, DecryptedOlmEvent } from "../olm-sessions/sessions.ts";
import type { RoomKeyUpdate } from "../room-keys/inbound.ts";
import type { ReceivedSecret, RefusedSecret } from "../secret-storage/gossip.ts";
import { SECRET_SEND_TYPE } from "../secret-storage/sharing.ts";

export interface ToDeviceEvent {
  readonly type: string;
  readonly sender: string;
  readonly content: Record<string, unknown>;
}

export interface SyncChanges {
  readonly toDevice?: readonly unknown[];
  readonly deviceLists?: { readonly changed?: readonly string[]; readonly left?: readonly string[] };
  readonly oneTimeKeyCounts?: Readonly<Record<string, number>>;
  readonly unusedFallbackKeyTypes?: readonly string[];
  readonly nextBatch?: string;
  /**
   * The verification events among `toDevice` (decrypted or not) are not handed to the flows in
   * this step: the caller hands them over later (`verification.receiveDeferredToDevice`), e.g. once
   * the application has put its handlers on. They are still in `toDevice` of the result.
   */
  readonly deferVerification?: boolean;
}

/** A to-device event after processing: decrypted ones say who sent them, with which keys. */
export interface ProcessedToDeviceEvent extends ToDeviceEvent {
  readonly encryption:
    | {
        readonly senderCurve25519: string;
        readonly senderEd25519: string;
        readonly senderDevice: string | undefined;
      }
    | undefined;
}

export interface SyncChangesResult {
  readonly toDevice: ProcessedToDeviceEvent[];
  readonly failures: { readonly sender: string; readonly code: ToDeviceFailureCode }[];
  /** Room keys that arrived in this sync. */
  readonly roomKeys: RoomKeyUpdate[];
  /** Events that failed earlier and decrypt now that their key arrived. */
  readonly redecrypted: DecryptedRoomEvent[];
  /** Sessions whose sender said in this sync that it withheld their key (`m.room_key.withheld`). */
  readonly withheldSessions: RoomKeyUpdate[];
  /** Events that failed earlier and fail now as `WITHHELD`: their sender said so in this sync. */
  readonly withheldEvents: UndecryptableRoomEvent[];
  /** Requests of our own unverified devices for keys we hold, held until they are verified. */
  readonly heldKeyRequests: HeldKeyRequest[];
  /** Secrets our own verified devices sent us on request, other than the cross-signing keys (imported). */
  readonly secrets: ReceivedSecret[];
  /** Answers to our secret requests refused as not the current key (the requests stay open): to log. */
  readonly refusedSecrets: RefusedSecret[];
  /** History-sharing bundles (MSC4268) that arrived and were remembered: room and sender. */
  readonly roomKeyBundles: { readonly roomId: string; readonly sender: string }[];
  /**
   * Olm session records found damaged in the store (failed authentication: corrupted or
   * tampered; or not unpickling) since the last sync, and deleted: to log (IDs only). The device
   * gets a new session as for any session we lack. At most `MAX_DAMAGED_REPORTS` a sync.
   */
  readonly damagedOlmSessions: DamagedOlmSession[];
  /**
   * Inbound Megolm session records found damaged in the store since the last sync (each once):
   * to log (IDs only). Read as absent: their events fail as `UNKNOWN_SESSION` (retried, the key
   * asked for) until a good copy replaces the row.
   */
  readonly damagedInboundSessions: RoomSessionKey[];
}

/** Never handed to the application: key material stays inside the machine. */
const SECRET_FIELDS = new Set(["session_key"]);
/** The same for `m.secret.send`, whose `secret` is a key (the client gets it in `secrets` if accepted). */
const SECRET_SEND_FIELDS = new Set(["session_key", "secret"]);
/** A history-sharing bundle's `file` holds the key of the attachment that holds room keys. */
const BUNDLE_FIELDS = new Set(["session_key", "file"]);

export async function receiveToDevice(p: Parts, raw: unknown, result: SyncChangesResult): Promise<void> {
  if (!isRecord(raw) || typeof raw.type !== "string" || !isId(raw.sender) || !isRecord(raw.content)) {
    return;
  }
  const { type, sender, content } = raw;
  if (type === "m.room.encrypted") {
    const decrypted = await p.olm.decrypt(sender, content);
    if (!decrypted.ok) {
      result.failures.push({ sender, code: decrypted.code });
      // Unwedging needs the sender's device keys: fetch them if we lack that device.
      if (
        decrypted.code === "NO_SESSION" &&
        decrypted.senderKey !== undefined &&
        (await p.devices.userDeviceByCurveKey(sender, decrypted.senderKey)) === undefined
      ) {
        p.devices.trackSender(sender);
      }
      return;
    }
    if (fromDehydratedDevice(decrypted.event)) {
      result.failures.push({ sender, code: "FROM_DEHYDRATED_DEVICE" });
      return;
    }
    await receiveDecrypted(p, sender, decrypted.event, result);
    return;
  }
  if (type === "m.room_key_request") {
    const held = await p.gossip.receiveRequest(sender, content);
    if (held !== undefined) result.heldKeyRequests.push(held);
  }
  if (type === "m.room_key.withheld") await receiveWithheld(p, sender, content, undefined, result);
  result.toDevice.push({ type, sender, content, encryption: undefined });
}

/**
 * MSC3814: a dehydrated device sends nothing, and whoever holds the dehydration key holds its keys
 * (its room keys would make events look sent by a cross-signed device). Its messages are dropped,
 * when we know the device as dehydrated or its keys in the payload say so (as matrix-rust-sdk).
 */
function fromDehydratedDevice(event: DecryptedOlmEvent): boolean {
  const dk = event.payload.sender_device_keys;
  return dk?.dehydrated === true || (event.device !== undefined && isDehydrated(event.device));
}

async function receiveDecrypted(
  p: Parts,
  sender: string,
  event: DecryptedOlmEvent,
  result: SyncChangesResult,
): Promise<void> {
  const { payload, senderKey } = event;
  // A device we have not seen: fetch its keys so what it sent can be attributed.
  if (event.device === undefined) {
    p.devices.trackSender(sender);
  }
  let update: RoomKeyUpdate | undefined;
  if (payload.type === "m.room_key") {
    update = await p.inbound.receiveRoomKey(payload.content, senderKey, payload.keys.ed25519);
  } else if (payload.type === "m.forwarded_room_key") {
    update = await p.gossip.receiveForwardedKey(event);
  } else if (payload.type === "m.room_key.withheld") {
    await receiveWithheld(p, sender, payload.content, senderKey, result);
  } else if (payload.type === SECRET_SEND_TYPE) {
    const { secret, refused } = await p.secrets.receiveSend(event);
    if (secret !== undefined) result.secrets.push(secret);
    if (refused !== undefined) result.refusedSecrets.push(refused);
  } else if (isRoomKeyBundleType(payload.type)) {
    await receiveBundle(p, sender, event, result);
  }
  if (update !== undefined) result.roomKeys.push(update);
  const hidden =
    payload.type === SECRET_SEND_TYPE
      ? SECRET_SEND_FIELDS
      : isRoomKeyBundleType(payload.type)
        ? BUNDLE_FIELDS
        : SECRET_FIELDS;
  const content = Object.fromEntries(Object.entries(payload.content).filter(([k]) => !hidden.has(k)));
  result.toDevice.push({
    type: payload.type,
    sender,
    content,
    encryption: {
      senderCurve25519: senderKey,
      senderEd25519: payload.keys.ed25519,
      senderDevice: event.device?.deviceId ?? payload.sender_device,
    },
  });
}

/**
 * An `m.room_key_bundle` (MSC4268): remembered, not downloaded (see `HistorySharingState`). The
 * spec wants the sender's device keys in the Olm payload, matching the keys that sent it.
 */
async function receiveBundle(
  p: Parts,
  sender: string,
  event: DecryptedOlmEvent,
  result: SyncChangesResult,
): Promise<void> {
  const { payload, senderKey } = event;
  const parsed = parseReceivedBundle(payload, sender, senderKey);
  if (parsed === undefined) return;
  await p.historySharing.addBundle({
    roomId: parsed.roomId,
    sender,
    senderKey,
    file: parsed.file,
    receivedAt: p.historySharing.now(),
  });
  result.roomKeyBundles.push({ roomId: parsed.roomId, sender });
}

/** Whether `sender` owns `senderKey`: undefined while their device list is not known yet. */
async function receiveWithheld(
  p: Parts,
  sender: string,
  content: Record<string, unknown>,
  senderKey: string | undefined,
  result: SyncChangesResult,
): Promise<void> {
  const withheld = await p.inbound.receiveWithheld(sender, content, senderKey, async (key) => {
    if (!p.devices.isTracked(sender) || p.devices.isOutdated(sender)) return undefined;
    return (await p.devices.userDeviceByCurveKey(sender, key)) !== undefined;
  });
  if (withheld !== undefined) result.withheldSessions.push(withheld);
}
