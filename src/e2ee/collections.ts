// Small helpers for the nested maps and records the machine's parts keep (per user, per device, per room).
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
