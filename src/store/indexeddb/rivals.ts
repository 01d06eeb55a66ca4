/**
 * Rival room keys in the IndexedDB crypto store (object store `rival_room_keys`, upgrade 7): keyed
 * by room, session and sender key, numbered in the order stored (`seq`, a unique index), the
 * pickle sealed by the store cipher. Unlike `ordered.ts`'s stores, rows also leave from the middle
 * (a settled session's rivals are deleted), so the numbers have gaps: a save reads every row's key
 * and number (the bound keeps them to about a hundred) and applies the bounds from those.
 */
import { rowAd, type StoreCipher } from "../cipher/store-cipher.ts";
import type { RivalRoomKeyId, RivalRoomKeyRecord } from "../records.ts";
import { MAX_RIVAL_ROOM_KEYS_PER_SESSION, MAX_STORED_RIVAL_ROOM_KEYS } from "../store.ts";
import { parseRivalRoomKey, parseRivalRoomKeyId } from "../validate.ts";
import { requestToPromise } from "./ordered.ts";

const idOf = (k: RivalRoomKeyId): string => JSON.stringify([k.roomId, k.sessionId, k.senderKey]);
const sessionOf = (k: RivalRoomKeyId): string => JSON.stringify([k.roomId, k.sessionId]);

function isRow(v: unknown): v is { readonly [field: string]: unknown } {
  return typeof v === "object" && v !== null;
}

/** Every stored rival, first stored first, its pickle opened. */
export function readRivals(rows: readonly unknown[], cipher: StoreCipher): RivalRoomKeyRecord[] {
  return rows.map((r) => {
    const row = isRow(r) ? r : {};
    const ad = rowAd("rival", String(row.roomId), String(row.sessionId), String(row.senderKey));
    const { seq: _, ...rest } = row;
    return parseRivalRoomKey({ ...rest, pickle: cipher.decrypt(row.pickle, ad) });
  });
}

/**
 * Upserts `records` (a rival saved again keeps its number), applies the per-session and overall
 * bounds (lowest numbers out first), then deletes `deleted`, inside the caller's write transaction.
 * Everything is validated before the first await.
 */
export async function applyRivals(
  store: IDBObjectStore,
  records: readonly RivalRoomKeyRecord[],
  deleted: readonly RivalRoomKeyId[],
  cipher: StoreCipher,
): Promise<void> {
  if (records.length === 0 && deleted.length === 0) return;
  const upserts = records.map(parseRivalRoomKey);
  const gone = deleted.map(parseRivalRoomKeyId);
  const stored = (await requestToPromise(store.index("seq").getAll())) as unknown[];
  // id -> [key, number], in number order (rows read through the `seq` index come in that order).
  const order = new Map<string, { key: RivalRoomKeyId; seq: number }>();
  let top = 0;
  for (const r of stored) {
    if (!isRow(r) || typeof r.seq !== "number") continue;
    const key = { roomId: String(r.roomId), sessionId: String(r.sessionId), senderKey: String(r.senderKey) };
    order.set(idOf(key), { key, seq: r.seq });
    top = Math.max(top, r.seq);
  }
  const touched = new Set<string>();
  for (const r of upserts) {
    const id = idOf(r);
    const seq = order.get(id)?.seq ?? ++top;
    if (!order.has(id)) order.set(id, { key: r, seq });
    touched.add(sessionOf(r));
    const pickle = cipher.encrypt(r.pickle, rowAd("rival", r.roomId, r.sessionId, r.senderKey));
    store.put({ ...r, pickle, seq });
  }
  const remove = (id: string): void => {
    const held = order.get(id);
    if (held === undefined) return;
    order.delete(id);
    store.delete([held.key.roomId, held.key.sessionId, held.key.senderKey]);
  };
  const bySession = new Map<string, string[]>();
  for (const [id, { key }] of order) {
    const session = sessionOf(key);
    if (!touched.has(session)) continue;
    const ids = bySession.get(session) ?? [];
    ids.push(id);
    bySession.set(session, ids);
  }
  for (const ids of bySession.values()) {
    for (const id of ids.slice(0, Math.max(0, ids.length - MAX_RIVAL_ROOM_KEYS_PER_SESSION))) remove(id);
  }
  if (upserts.length > 0) {
    for (const id of [...order.keys()].slice(0, Math.max(0, order.size - MAX_STORED_RIVAL_ROOM_KEYS))) {
      remove(id);
    }
  }
  for (const k of gone) remove(idOf(k)); // one not in `order` is not stored
}
