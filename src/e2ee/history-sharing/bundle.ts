/**
 * The room key bundle of history sharing (MSC4268, spec v1.19 "Sharing keys between users"): the
 * `RoomKeyBundle` JSON (shareable sessions in `room_keys`, the others in `withheld` with
 * `m.history_not_shared`), and the `m.room_key_bundle` to-device content pointing at it as an
 * encrypted attachment. Pure functions; the client uploads and downloads.
 */
import { type EncryptedFile, isEncryptedFile } from "../../crypto/attachments/file-info.ts";
import { verifySignedJson } from "../../crypto/json/index.ts";
import type { ExportedRoomKey } from "../../crypto/key-export/index.ts";
import { InboundGroupSession, MegolmError } from "../../crypto/megolm/index.ts";
import { utf8Decode } from "../../crypto/primitives/index.ts";
import type { InboundGroupSessionRecord } from "../../store/records.ts";
import { isRecord } from "../../wire/json.ts";
import { MEGOLM_ALGORITHM } from "../devices/device.ts";
import { isId } from "../limits.ts";
import type { OlmPayload } from "../olm-sessions/payload.ts";
import { claimedKeysOf, isPublicKey } from "../room-keys/import.ts";

/** The spec's to-device type. */
export const ROOM_KEY_BUNDLE_TYPE = "m.room_key_bundle";
/** The unstable type the rust-sdk (and so matrix-js-sdk) sent before v1.19; read, never written. */
export const UNSTABLE_ROOM_KEY_BUNDLE_TYPE = "io.element.msc4268.room_key_bundle";
export const HISTORY_NOT_SHARED = "m.history_not_shared";
/** Most sessions we put in, or take from, one bundle. */
export const MAX_BUNDLE_ROOM_KEYS = 100_000;
/** Largest bundle file we download (about 1 KiB per session). */
export const MAX_BUNDLE_BYTES = 128 * 1024 * 1024;
/**
 * Longest `file.url` of a bundle we take (an `mxc://` URI: a server name of at most 255
 * characters and a short media ID). Anyone may send us bundles and we remember them: a longer URL
 * is malformed, so that what we store stays small.
 */
export const MAX_BUNDLE_URL_LENGTH = 512;

export type HistoricRoomKey = Omit<ExportedRoomKey, "forwarding_curve25519_key_chain" | "shared_history">;

export interface RoomKeyWithheldEntry {
  readonly algorithm: string;
  readonly code: string;
  readonly reason: string;
  readonly room_id: string;
  readonly sender_key: string;
  readonly session_id: string;
}

export interface RoomKeyBundle {
  readonly room_keys: HistoricRoomKey[];
  readonly withheld: RoomKeyWithheldEntry[];
}

export class HistorySharingError extends Error {
  override readonly name = "HistorySharingError";
  readonly code: "BAD_BUNDLE" | "TOO_LARGE";
  constructor(code: "BAD_BUNDLE" | "TOO_LARGE", message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * The bundle of a room's sessions: the shareable ones (`sharedHistory`) with their keys from the
 * first index we know, the rest named in `withheld`. At most {@link MAX_BUNDLE_ROOM_KEYS} keys.
 */
export function buildRoomKeyBundle(
  roomId: string,
  records: readonly InboundGroupSessionRecord[],
): RoomKeyBundle {
  const roomKeys: HistoricRoomKey[] = [];
  const withheld: RoomKeyWithheldEntry[] = [];
  for (const r of records) {
    // A sender key that is not a Curve25519 key (an import only checks IDs) would make
    // matrix-rust-sdk refuse the whole bundle, in either list.
    if (r.roomId !== roomId || !isPublicKey(r.senderKey)) continue;
    if (r.sharedHistory !== true) {
      withheld.push({
        algorithm: MEGOLM_ALGORITHM,
        code: HISTORY_NOT_SHARED,
        reason: "History not shared",
        room_id: roomId,
        sender_key: r.senderKey,
        session_id: r.sessionId,
      });
      continue;
    }
    if (roomKeys.length >= MAX_BUNDLE_ROOM_KEYS) continue;
    let session: InboundGroupSession;
    try {
      session = InboundGroupSession.fromPickle(r.pickle);
    } catch (e) {
      if (e instanceof MegolmError) continue;
      throw e;
    }
    roomKeys.push({
      algorithm: MEGOLM_ALGORITHM,
      room_id: roomId,
      sender_claimed_keys: claimedKeysOf(r.senderClaimedEd25519),
      sender_key: r.senderKey,
      session_id: r.sessionId,
      session_key: session.exportAtFirstKnownIndex(),
    });
  }
  return { room_keys: roomKeys, withheld };
}

/**
 * The room keys of a downloaded bundle, as key export entries for `roomId` only (keys of other
 * rooms are ignored, as the spec asks). Malformed entries are left to the import, which skips
 * them one by one. `HistorySharingError`: `BAD_BUNDLE` (not JSON, not a bundle), `TOO_LARGE`.
 */
export function parseRoomKeyBundle(bytes: Uint8Array, roomId: string): ExportedRoomKey[] {
  if (bytes.byteLength > MAX_BUNDLE_BYTES)
    throw new HistorySharingError("TOO_LARGE", "the bundle is too large");
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(bytes));
  } catch {
    throw new HistorySharingError("BAD_BUNDLE", "the bundle is not JSON");
  }
  if (!isRecord(json) || !Array.isArray(json.room_keys)) {
    throw new HistorySharingError("BAD_BUNDLE", "the bundle has no room_keys list");
  }
  const out: ExportedRoomKey[] = [];
  for (const entry of json.room_keys.slice(0, MAX_BUNDLE_ROOM_KEYS)) {
    if (!isRecord(entry) || entry.room_id !== roomId) continue;
    // Keys from a bundle are shareable by definition; there is no forwarding chain to copy.
    out.push({
      ...(entry as unknown as ExportedRoomKey),
      forwarding_curve25519_key_chain: [],
      shared_history: true,
    });
  }
  return out;
}

/** The `m.room_key_bundle` content, checked; undefined when it is not one we can use. */
export function parseRoomKeyBundleContent(
  content: unknown,
): { readonly roomId: string; readonly file: EncryptedFile } | undefined {
  if (!isRecord(content) || !isId(content.room_id) || !content.room_id.startsWith("!")) return undefined;
  const file = content.file;
  if (!isEncryptedFile(file) || !isBundleUrl(file.url)) return undefined;
  return { roomId: content.room_id, file: knownFileFields(file) };
}

/** An `mxc://` URI: server name and media ID are printable ASCII (so each character is one byte stored). */
const MXC_URI = /^mxc:\/\/[\x21-\x7e]+$/;

/** An `mxc://` URI of at most {@link MAX_BUNDLE_URL_LENGTH} characters. */
export function isBundleUrl(url: string): boolean {
  return url.length <= MAX_BUNDLE_URL_LENGTH && MXC_URI.test(url);
}

/**
 * Only the fields an `EncryptedFile` has: the sender may add any others, nested as deep as an
 * event may be, and a bundle is remembered in the crypto store, which refuses values nesting past
 * `MAX_STORED_JSON_DEPTH` (the sync step carrying it would fail on every retry).
 */
function knownFileFields(file: EncryptedFile): EncryptedFile {
  const { url, v, iv, key, hashes } = file;
  return {
    url,
    v,
    iv,
    key: { kty: key.kty, key_ops: ["encrypt", "decrypt"], alg: key.alg, k: key.k, ext: true },
    hashes: { sha256: hashes.sha256 },
  };
}

/**
 * A bundle event that came over Olm from `senderKey`: its content, when the payload carries the
 * sender's self-signed device keys (`sender_device_keys`, which the spec requires for this event)
 * and they are the keys that sent it.
 */
export function parseReceivedBundle(
  payload: OlmPayload,
  sender: string,
  senderKey: string,
): { readonly roomId: string; readonly file: EncryptedFile } | undefined {
  const parsed = parseRoomKeyBundleContent(payload.content);
  return parsed !== undefined && senderDeviceKeysMatch(payload, sender, senderKey) ? parsed : undefined;
}

function senderDeviceKeysMatch(payload: OlmPayload, sender: string, senderKey: string): boolean {
  const dk = payload.sender_device_keys;
  if (dk === undefined || dk.user_id !== sender || !isId(dk.device_id) || !isRecord(dk.keys)) return false;
  const ed = dk.keys[`ed25519:${dk.device_id}`];
  if (dk.keys[`curve25519:${dk.device_id}`] !== senderKey || ed !== payload.keys.ed25519) return false;
  try {
    return verifySignedJson(dk, sender, `ed25519:${dk.device_id}`, ed);
  } catch {
    return false;
  }
}

export function isRoomKeyBundleType(type: string): boolean {
  return type === ROOM_KEY_BUNDLE_TYPE || type === UNSTABLE_ROOM_KEY_BUNDLE_TYPE;
}
