/** `record[key]`, created empty first if missing. */
export function entryOf<V>(record: Record<string, Record<string, V>>, key: string): Record<string, V> {
  let inner = record[key];
  if (inner === undefined) {
    inner = {};
    record[key] = inner;
  }
  return inner;
}

/** `map.get(key)`, created with `make()` first if missing. */
export function getOrInsert<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

/** A JSON object (not null, not an array): the first check on anything from the network. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
