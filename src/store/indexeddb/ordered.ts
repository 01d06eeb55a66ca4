/**
 * Object stores whose rows are numbered in the order stored (`seq`, a unique index; upgrade 5):
 * withheld notices and Olm message hashes, which anyone can add and which are therefore bounded,
 * the oldest deleted first.
 */

export function requestToPromise<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

export interface PutInOrderOptions {
  /** Rows kept at most: beyond it, the lowest numbers are deleted. */
  readonly max: number;
  /** A row already stored is rewritten with the new value (else left as it is); it keeps its number. */
  readonly replace: boolean;
  readonly range: typeof IDBKeyRange;
}

/**
 * Upserts `rows` into `store` inside the caller's write transaction, then deletes the rows beyond
 * `max`, lowest numbers first. A row saved again keeps its number and rows leave only from the low
 * end, so the numbers stay contiguous and the newest `max` are exactly those above `highest - max`.
 * Costs, per save: one read per row, one for the highest number, one for the rows to delete.
 */
export async function putInOrder(
  store: IDBObjectStore,
  rows: readonly { readonly key: IDBValidKey; readonly value: object }[],
  { max, replace, range }: PutInOrderOptions,
): Promise<void> {
  if (rows.length === 0) return;
  const bySeq = store.index("seq");
  const [highest, stored] = await Promise.all([
    requestToPromise(bySeq.openKeyCursor(null, "prev")),
    Promise.all(rows.map((r) => requestToPromise(store.get(r.key)))),
  ]);
  let top = typeof highest?.key === "number" ? highest.key : 0;
  // Numbers given in this save: a row listed twice is one row.
  const given = new Map<string, number>();
  rows.forEach((r, i) => {
    const id = JSON.stringify(r.key);
    const old: unknown = stored[i];
    const oldSeq = typeof old === "object" && old !== null ? (old as { seq?: unknown }).seq : undefined;
    const had = given.get(id) ?? (typeof oldSeq === "number" ? oldSeq : undefined);
    if (had !== undefined && !replace) return;
    const seq = had ?? ++top;
    given.set(id, seq);
    store.put({ ...r.value, seq });
  });
  if (top <= max) return;
  for (const key of await requestToPromise(bySeq.getAllKeys(range.upperBound(top - max)))) {
    store.delete(key);
  }
}
