// A crypto store seen with damaged inbound session rows that are not there: each backup read names
// them as the sealed stores name theirs (`getInboundGroupSessionsToBackUp`), first in the store's
// order, at most `maxUnreadable` of those not skipped or marked, and a good copy saved over one
// replaces it. Cheaper than damaging real rows, for tests of many of them (MAX_SKIPPED_DAMAGED_SESSIONS).
import type { CryptoChanges, CryptoStore, RoomSessionKey } from "../../store/index.ts";

export const DAMAGED_ROOM = "!a-damaged:example.org";

export interface SimulatedDamagedRows {
  readonly store: CryptoStore;
  /** The damaged rows' session IDs in the store's order (push to add one; a good copy removes it). */
  readonly damaged: string[];
  /** How many times each damaged row was marked backed up. */
  readonly marks: Map<string, number>;
  /** How many damaged rows each backup read named. */
  readonly named: number[];
}

/**
 * `store` with `damaged` rows in `DAMAGED_ROOM`; `honorSkip: false` for a store that ignores
 * `skip`, `honorMarks: false` for one whose damaged rows stay unmarked (both break the contract).
 */
export function withDamagedRows(
  store: CryptoStore,
  damaged: string[],
  { honorSkip = true, honorMarks = true }: { honorSkip?: boolean; honorMarks?: boolean } = {},
): SimulatedDamagedRows {
  const marks = new Map<string, number>();
  const named: number[] = [];
  const read: CryptoStore["getInboundGroupSessionsToBackUp"] = async (limit, unreadable, options) => {
    const list: RoomSessionKey[] = unreadable ?? [];
    const before = list.length;
    try {
      for (const sessionId of damaged) {
        if (honorMarks && marks.has(sessionId)) continue;
        if (honorSkip && options?.skip?.(DAMAGED_ROOM, sessionId) === true) continue;
        list.push({ roomId: DAMAGED_ROOM, sessionId });
        // The read stops at its bound on damaged rows: no good row comes before them.
        if (options?.maxUnreadable !== undefined && list.length - before >= options.maxUnreadable) return [];
      }
      return await store.getInboundGroupSessionsToBackUp(limit, list, options);
    } finally {
      named.push(list.length - before);
    }
  };
  const saveChanges = async (changes: CryptoChanges) => {
    for (const r of changes.inboundGroupSessions ?? []) {
      const i = r.roomId === DAMAGED_ROOM ? damaged.indexOf(r.sessionId) : -1;
      if (i >= 0) damaged.splice(i, 1);
    }
    for (const k of changes.backedUp ?? [])
      if (k.roomId === DAMAGED_ROOM) marks.set(k.sessionId, (marks.get(k.sessionId) ?? 0) + 1);
    await store.saveChanges(changes);
  };
  const wrapped = new Proxy(store, {
    get(target, prop) {
      if (prop === "getInboundGroupSessionsToBackUp") return read;
      if (prop === "saveChanges") return saveChanges;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { store: wrapped, damaged, marks, named };
}
