/**
 * The bulk reads of inbound Megolm sessions in the IndexedDB crypto store (object store
 * `inbound_group_sessions`, keyed by `[roomId, sessionId]`, index `backedUp`). Given `unreadable`,
 * a damaged row (fails authentication, malformed) is left out, its IDs pushed there, and, for the
 * reads with a limit, read past: it does not count towards the limit (see `CryptoStore`).
 */
import type { IDBPDatabase } from "idb";
import { readUnlessDamaged } from "../errors.ts";
import type { InboundGroupSessionRecord, RoomSessionKey } from "../records.ts";
import type { BackUpReadOptions } from "../store.ts";

type Parse = (row: unknown) => InboundGroupSessionRecord;
type Row = { readonly [field: string]: unknown };

function isRow(v: unknown): v is Row {
  return typeof v === "object" && v !== null;
}

function keyOf(row: unknown): RoomSessionKey {
  const r: Row = isRow(row) ? row : {};
  return { roomId: String(r.roomId), sessionId: String(r.sessionId) };
}

function parseAll(
  rows: readonly unknown[],
  parse: Parse,
  unreadable: RoomSessionKey[] | undefined,
): InboundGroupSessionRecord[] {
  const out: InboundGroupSessionRecord[] = [];
  for (const r of rows) {
    const record = readUnlessDamaged(
      () => parse(r),
      () => keyOf(r),
      unreadable,
    );
    if (record !== undefined) out.push(record);
  }
  return out;
}

/**
 * Up to `limit` records from `next(n)` (the next `n` rows in order, each call going on from the
 * last), reading on while damaged rows kept the count short and more rows may follow.
 */
async function readPastDamaged(
  limit: number,
  next: (n: number) => Promise<unknown[]>,
  parse: Parse,
  unreadable: RoomSessionKey[] | undefined,
  options: BackUpReadOptions = {},
): Promise<InboundGroupSessionRecord[]> {
  const { skip, maxUnreadable } = options;
  const out: InboundGroupSessionRecord[] = [];
  const named = unreadable?.length ?? 0;
  for (;;) {
    const wanted = limit - out.length;
    const rows = await next(wanted);
    for (const r of rows) {
      const key = keyOf(r);
      if (skip?.(key.roomId, key.sessionId) === true) continue;
      const record = readUnlessDamaged(
        () => parse(r),
        () => key,
        unreadable,
      );
      if (record !== undefined) out.push(record);
      else if (maxUnreadable !== undefined && (unreadable?.length ?? 0) - named >= maxUnreadable) return out;
      // `next` may give more rows than asked for (see `inboundToBackUp`).
      if (out.length === limit) return out;
    }
    if (out.length === limit || rows.length < wanted) return out;
  }
}

export async function inboundForRoom(
  db: IDBPDatabase<unknown>,
  range: typeof IDBKeyRange,
  roomId: string,
  parse: Parse,
  unreadable: RoomSessionKey[] | undefined,
): Promise<InboundGroupSessionRecord[]> {
  // Arrays sort after strings, so [roomId, []] is above every [roomId, sessionId].
  const rows = await db.getAll("inbound_group_sessions", range.bound([roomId], [roomId, []]));
  return parseAll(rows, parse, unreadable);
}

export function inboundPage(
  db: IDBPDatabase<unknown>,
  range: typeof IDBKeyRange,
  after: RoomSessionKey | undefined,
  limit: number,
  parse: Parse,
  unreadable: RoomSessionKey[] | undefined,
): Promise<InboundGroupSessionRecord[]> {
  // One transaction for every read of the page (only IDB requests are awaited in it).
  const store = db.transaction("inbound_group_sessions").store;
  let from: unknown[] | undefined = after === undefined ? undefined : [after.roomId, after.sessionId];
  return readPastDamaged(
    limit,
    async (n) => {
      // The primary key is [roomId, sessionId]: an open lower bound resumes right after the cursor.
      const rows: unknown[] = await store.getAll(
        from === undefined ? undefined : range.lowerBound(from, true),
        n,
      );
      const last = rows[rows.length - 1];
      if (last !== undefined) from = [keyOf(last).roomId, keyOf(last).sessionId];
      return rows;
    },
    parse,
    unreadable,
  );
}

export function inboundToBackUp(
  db: IDBPDatabase<unknown>,
  limit: number,
  parse: Parse,
  unreadable: RoomSessionKey[] | undefined,
  options?: BackUpReadOptions,
): Promise<InboundGroupSessionRecord[]> {
  const index = db.transaction("inbound_group_sessions").store.index("backedUp");
  let read = 0;
  return readPastDamaged(
    limit,
    async (n) => {
      // An index read cannot start after a given row: the rows already read are read again and
      // dropped, which costs only when damaged or skipped rows made the batch go on (in the same
      // transaction, so they are the same rows). Asking for at least as many again as were read
      // keeps that linear in the rows passed over (up to MAX_SKIPPED_DAMAGED_SESSIONS skipped).
      const rows: unknown[] = (await index.getAll(0, read + Math.max(n, read))).slice(read);
      read += rows.length;
      return rows;
    },
    parse,
    unreadable,
    options,
  );
}
