/**
 * Room keys to and from key export files and backups (`ExportedRoomKey` entries). On import each
 * entry is checked on its own: one we cannot use is skipped and never spoils the rest.
 */
import {
  type ExportedRoomKey,
  parseExportedRoomKey,
  RUST_SHARED_HISTORY_FIELD,
} from "../../crypto/key-export/exported-room-key.ts";
import { InboundGroupSession, MegolmError } from "../../crypto/megolm/index.ts";
import { decodeBase64 } from "../../crypto/primitives/index.ts";
import type { InboundGroupSessionRecord, RoomSessionKey } from "../../store/records.ts";
import { MEGOLM_ALGORITHM } from "../devices/device.ts";
import { isId, MAX_FORWARDING_CHAIN } from "../limits.ts";
import type { InboundSessions, RoomKeyUpdate } from "./inbound.ts";

/**
 * Keys imported per saved step: progress is reported, and memory stays flat, between steps. Large,
 * because the keys of a step land all over the store's indexes (session IDs are random): fewer,
 * bigger commits write each touched page once rather than once per step.
 */
export const IMPORT_BATCH_SIZE = 5000;

/**
 * Reads the stored copies of the sessions these entries name, in one store call rather than one
 * per entry (`InboundSessions.prefetch`): call it at the start of an import step, then
 * `importRoomKey` each entry; entries it cannot read are left to `importRoomKey` to refuse.
 */
export async function prefetchImported(inbound: InboundSessions, entries: readonly unknown[]): Promise<void> {
  const keys: RoomSessionKey[] = [];
  for (const e of entries) {
    if (typeof e !== "object" || e === null) continue;
    const { room_id: roomId, session_id: sessionId } = e as { room_id?: unknown; session_id?: unknown };
    if (isId(roomId) && isId(sessionId)) keys.push({ roomId, sessionId });
  }
  await inbound.prefetch(keys);
}

/**
 * Imports one entry; `backedUpFrom` when it comes from the backup we upload to, from that message
 * index (see `InboundSessions.add`).
 */
export async function importRoomKey(
  inbound: InboundSessions,
  entry: unknown,
  backedUpFrom?: number,
): Promise<RoomKeyUpdate | undefined> {
  const key = parseExportedRoomKey(entry);
  if (typeof key === "string") return undefined;
  return importParsedRoomKey(inbound, key, backedUpFrom);
}

/**
 * `importRoomKey` for an entry already in the form `parseExportedRoomKey` returns (a backup
 * record's, parsed as it was decrypted): the checks that follow the parse are made here too.
 */
export async function importParsedRoomKey(
  inbound: InboundSessions,
  key: ExportedRoomKey,
  backedUpFrom?: number,
): Promise<RoomKeyUpdate | undefined> {
  if (key.algorithm !== MEGOLM_ALGORITHM) return undefined;
  // Everything that becomes a store key or column must be an ID the store keeps exactly.
  const claimed = key.sender_claimed_keys.ed25519;
  if (
    !isId(key.room_id) ||
    !isId(key.session_id) ||
    !isId(key.sender_key) ||
    (claimed !== undefined && !isId(claimed)) ||
    !key.forwarding_curve25519_key_chain.every(isId)
  ) {
    return undefined;
  }
  let session: InboundGroupSession;
  try {
    session = InboundGroupSession.fromExport(key.session_key);
  } catch (e) {
    if (e instanceof MegolmError) return undefined;
    throw e;
  }
  if (session.sessionId !== key.session_id) return undefined;
  // At most as long as a key forwarded to us over Olm keeps (its chain and the forwarder): a longer
  // one is cut to its last entries, the forwarder `keysFrom` reports among them. Kept whole, a chain
  // of thousands made every stored copy of the key megabytes.
  const chain = key.forwarding_curve25519_key_chain;
  const forwardingChain =
    chain.length > MAX_FORWARDING_CHAIN + 1 ? chain.slice(-(MAX_FORWARDING_CHAIN + 1)) : chain;
  return inbound.add(
    {
      roomId: key.room_id,
      senderKey: key.sender_key,
      senderClaimedEd25519: key.sender_claimed_keys.ed25519 ?? "",
      forwarded: forwardingChain.length > 0,
      imported: true,
      forwardingChain,
      ...(key.shared_history === true ? { sharedHistory: true } : {}),
    },
    session,
    // An import brings many keys, few of them for the events about to be read.
    backedUpFrom === undefined ? { transient: true } : { transient: true, backedUpFrom },
  );
}

/** A stored session's key from its first known index, or undefined when the pickle is unreadable. */
export function sessionKeyAtFirstKnownIndex(record: InboundGroupSessionRecord): string | undefined {
  try {
    return InboundGroupSession.fromPickle(record.pickle).exportAtFirstKnownIndex();
  } catch (e) {
    if (e instanceof MegolmError) return undefined;
    throw e;
  }
}

/**
 * `sender_claimed_keys` for a stored claim: empty when it is not an Ed25519 key (a session imported
 * without one is stored with ""). matrix-rust-sdk refuses a whole export file or history bundle
 * over one such value, not just its session.
 */
export function claimedKeysOf(ed25519: string): Record<string, string> {
  return isPublicKey(ed25519) ? { ed25519 } : {};
}

/** A 32-byte public key in base64 (an import only checks that keys are IDs). */
export function isPublicKey(value: string): boolean {
  try {
    return decodeBase64(value).length === 32;
  } catch {
    return false;
  }
}

/**
 * A session as an export entry, from its first known index; undefined when its sender key is not a
 * Curve25519 key (an import only checks IDs), which would make matrix-rust-sdk refuse the whole file.
 */
export function exportRoomKey(record: InboundGroupSessionRecord): ExportedRoomKey | undefined {
  if (!isPublicKey(record.senderKey)) return undefined;
  const sessionKey = sessionKeyAtFirstKnownIndex(record);
  if (sessionKey === undefined) return undefined;
  return {
    algorithm: MEGOLM_ALGORITHM,
    room_id: record.roomId,
    sender_key: record.senderKey,
    session_id: record.sessionId,
    session_key: sessionKey,
    sender_claimed_keys: claimedKeysOf(record.senderClaimedEd25519),
    forwarding_curve25519_key_chain: [...record.forwardingChain],
    // matrix-rust-sdk (Element) reads the flag only under its own name.
    ...(record.sharedHistory === true ? { shared_history: true, [RUST_SHARED_HISTORY_FIELD]: true } : {}),
  };
}
