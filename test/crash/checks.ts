// The invariants the kill loop checks at the end, as pure functions over what was recorded: the
// victim's stdout lines, the peers' records, the key exchanges seen by the proxy and the devserver's
// one-time key rows. Each returns a list of problems (empty when the invariant holds).
import type { KeyExchange } from "./recording-proxy.ts";
import type { VictimLine } from "./victim.ts";

/** A victim stdout line, tagged with the run that printed it (-1 for the final run). */
export type RunLine = VictimLine & { run: number };

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** From the first `ready` on, every start reports the same device ID and Ed25519 key. */
export function checkIdentity(lines: readonly RunLine[]): string[] {
  const readies = lines.filter((l): l is Extract<RunLine, { t: "ready" }> => l.t === "ready");
  const first = readies[0];
  if (first === undefined) return ["the victim never became ready"];
  return readies
    .filter((r) => r.deviceId !== first.deviceId || r.ed25519 !== first.ed25519)
    .map(
      (r) =>
        `run ${r.run}: device changed to ${r.deviceId}/${r.ed25519} (first: ${first.deviceId}/${first.ed25519})`,
    );
}

/** What the end of the loop knows beyond the lines: to-device messages still queued for the victim. */
export interface FinalState {
  pendingToDevice: number;
}

type Undec = Extract<RunLine, { t: "undec" }>;

/** Which key a final-run failure needs, and how it came to be missing. */
function howLost(u: Undec | undefined, final: FinalState): string {
  if (u === undefined) return "the event is not in the final run's history";
  const key = `session ${u.sessionId ?? "?"} from sender key ${u.senderKey ?? "?"} (${u.code})`;
  if (u.stored === true) return `${key}: the victim's store holds the session, yet the event did not decrypt`;
  if (final.pendingToDevice > 0)
    return `${key}: not in the victim's store, and the server still holds ${final.pendingToDevice} to-device messages for it (not drained)`;
  return `${key}: not in the victim's store and nothing left queued on the server: delivered, then lost`;
}

/**
 * Every message in `expected` (event ID → body) decrypted in the final run with its body; nothing
 * in the final run's history stayed undecryptable; no event ever decrypted to two bodies, or to a
 * body other than the one its sender recorded. A failure names the session and how it went missing.
 */
export function checkDecryptions(
  lines: readonly RunLine[],
  expected: ReadonlyMap<string, string>,
  final: FinalState = { pendingToDevice: 0 },
): string[] {
  const problems: string[] = [];
  const finalDec = new Map<string, string>();
  const finalUndec = new Map<string, Undec>();
  const seen = new Map<string, { body: string; run: number }>();
  for (const l of lines) {
    if (l.t === "dec") {
      if (l.run === -1) finalDec.set(l.eventId, l.body);
      const before = seen.get(l.eventId);
      if (before !== undefined && before.body !== l.body) {
        problems.push(`${l.eventId} decrypted differently in runs ${before.run} and ${l.run}`);
      }
      seen.set(l.eventId, { body: l.body, run: l.run });
      const want = expected.get(l.eventId);
      if (want !== undefined && want !== l.body)
        problems.push(`${l.eventId} decrypted to a wrong body (run ${l.run})`);
    }
    if (l.t === "undec" && l.run === -1) finalUndec.set(l.eventId, l);
  }
  for (const [eventId, u] of finalUndec) {
    if (!expected.has(eventId))
      problems.push(`${eventId} undecryptable in the final run: ${howLost(u, final)}`);
  }
  for (const [eventId, body] of expected) {
    const got = finalDec.get(eventId);
    if (got === undefined) {
      const u = finalUndec.get(eventId);
      const what = u?.stored === true ? "room key stored but unusable" : "room key lost";
      problems.push(`${eventId} (${body}) never decrypted in the final run: ${what}; ${howLost(u, final)}`);
    }
  }
  return problems;
}

/** The victim reported no error (sync, send, or a failed start). */
export function checkNoErrors(lines: readonly RunLine[]): string[] {
  return lines
    .filter((l): l is Extract<RunLine, { t: "error" }> => l.t === "error")
    .map((l) => `run ${l.run}: ${l.where} error ${l.code}: ${l.message}`);
}

/** The key string of a signed key object, or of an unsigned key string. */
function keyOf(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (isObj(v) && typeof v.key === "string") return v.key;
  return undefined;
}

export interface DeviceRef {
  userId: string;
  deviceId: string;
}

/**
 * One-time and fallback keys of `device` as uploaded (key ID → key), checked: no upload was refused,
 * no key ID uploaded twice with different keys, no key under two IDs, device keys never changed.
 */
export function checkUploads(
  exchanges: readonly KeyExchange[],
  tokenDevice: ReadonlyMap<string, DeviceRef>,
  device: DeviceRef,
  ed25519: string,
): { problems: string[]; uploaded: Map<string, string> } {
  const problems: string[] = [];
  const uploaded = new Map<string, string>();
  const fallbacks = new Map<string, string>();
  const idOfKey = new Map<string, string>();
  const deviceKeys = new Set<string>();
  let index = 0;
  for (const x of exchanges) {
    if (x.kind !== "upload") continue;
    const who = tokenDevice.get(x.token);
    if (who?.userId !== device.userId || who.deviceId !== device.deviceId) continue;
    index++;
    if (x.status !== 200) {
      const err = isObj(x.response) ? `${String(x.response.errcode)}: ${String(x.response.error)}` : "";
      problems.push(`upload #${index} refused with ${x.status} ${err}`);
    }
    const body = isObj(x.request) ? x.request : {};
    if (isObj(body.device_keys) && isObj(body.device_keys.keys)) {
      deviceKeys.add(JSON.stringify(body.device_keys.keys));
      if (body.device_keys.keys[`ed25519:${device.deviceId}`] !== ed25519) {
        problems.push(`upload #${index}: device keys with another Ed25519 key`);
      }
    }
    for (const [table, map] of [
      ["one_time_keys", uploaded],
      ["fallback_keys", fallbacks],
    ] as const) {
      const keys = body[table];
      if (!isObj(keys)) continue;
      for (const [id, v] of Object.entries(keys)) {
        const key = keyOf(v);
        if (key === undefined) continue;
        const before = map.get(id);
        if (before !== undefined && before !== key)
          problems.push(`${table} ${id} uploaded again with another key`);
        map.set(id, key);
        if (table === "one_time_keys") {
          const otherId = idOfKey.get(key);
          if (otherId !== undefined && otherId !== id)
            problems.push(`one-time key ${id} also uploaded as ${otherId}`);
          idOfKey.set(key, id);
        }
      }
    }
  }
  if (deviceKeys.size > 1) problems.push(`device keys uploaded in ${deviceKeys.size} different versions`);
  return { problems, uploaded };
}

/**
 * Every claim of `device`'s keys got one, a one-time key never went out twice, and every one that
 * went out is one the device uploaded (so it holds its private half).
 */
export function checkClaims(
  exchanges: readonly KeyExchange[],
  device: DeviceRef,
  uploaded: ReadonlyMap<string, string>,
): { problems: string[]; claimed: number; fallbackClaims: number } {
  const problems: string[] = [];
  const handedOut = new Map<string, number>();
  let claimed = 0;
  let fallbackClaims = 0;
  let index = 0;
  for (const x of exchanges) {
    if (x.kind !== "claim") continue;
    const req = isObj(x.request) && isObj(x.request.one_time_keys) ? x.request.one_time_keys : {};
    const forAsker = req[device.userId];
    const asked = isObj(forAsker) && device.deviceId in forAsker;
    if (!asked) continue;
    index++;
    if (x.status !== 200) {
      problems.push(`claim #${index} of the victim's key failed with ${x.status}`);
      continue;
    }
    const res = isObj(x.response) && isObj(x.response.one_time_keys) ? x.response.one_time_keys : {};
    const forUser = res[device.userId];
    const forDevice = isObj(forUser) ? forUser[device.deviceId] : undefined;
    const entries = isObj(forDevice) ? Object.entries(forDevice) : [];
    if (entries.length === 0) {
      problems.push(
        `claim #${index}: the server had no one-time key for the victim (session creation would fail)`,
      );
      continue;
    }
    for (const [id, v] of entries) {
      const key = keyOf(v);
      if (isObj(v) && v.fallback === true) {
        fallbackClaims++;
        continue;
      }
      claimed++;
      const n = (handedOut.get(`${id}|${key}`) ?? 0) + 1;
      handedOut.set(`${id}|${key}`, n);
      if (n === 2) problems.push(`one-time key ${id} was claimed twice`);
      if (uploaded.get(id) !== key)
        problems.push(`claimed one-time key ${id} is not the one the victim uploaded`);
    }
  }
  return { problems, claimed, fallbackClaims };
}

/** The server's stored one-time keys for the device match what the device uploaded. */
export function checkStoredKeys(
  rows: readonly { algorithm: string; key_id: string; key_json: string }[],
  uploaded: ReadonlyMap<string, string>,
): string[] {
  const problems: string[] = [];
  for (const r of rows) {
    let key: string | undefined;
    try {
      key = keyOf(JSON.parse(r.key_json));
    } catch {
      key = undefined;
    }
    const want = uploaded.get(`${r.algorithm}:${r.key_id}`);
    if (want === undefined) problems.push(`the server holds one-time key ${r.key_id} that no upload carried`);
    else if (want !== key) problems.push(`the server holds one-time key ${r.key_id} with other key material`);
  }
  return problems;
}

/** What the devserver's database says about the victim user's key backup. */
export interface ServerBackup {
  /** Versions ever created for the user (deleted ones included). */
  versions: readonly string[];
  /** `roomId|sessionId` → `first_message_index` of the record the server holds, per version. */
  keys: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

/**
 * The key backup survived the kills: one version only (a version created just before a kill is
 * adopted, never made again), every upload of the victim went to it and was accepted, the final
 * run marked everything backed up, and every session the victim holds is in the server's backup
 * at least as well as the victim holds it. Returns the victim's upload count too.
 */
export function checkBackup(
  lines: readonly RunLine[],
  exchanges: readonly KeyExchange[],
  tokenDevice: ReadonlyMap<string, DeviceRef>,
  device: DeviceRef,
  server: ServerBackup,
): { problems: string[]; uploads: number; sessions: number } {
  const problems: string[] = [];
  if (server.versions.length !== 1) {
    problems.push(
      `${server.versions.length} backup versions were created (one expected: a kill must not make another)`,
    );
  }
  const version = server.versions[0];
  let uploads = 0;
  for (const x of exchanges) {
    if (x.kind !== "backup_upload") continue;
    const who = tokenDevice.get(x.token);
    if (who?.userId !== device.userId || who.deviceId !== device.deviceId) continue;
    uploads++;
    const uploadedTo = new URL(x.url, "http://proxy").searchParams.get("version");
    if (uploadedTo !== version)
      problems.push(`a backup upload went to version ${uploadedTo} (not ${version})`);
    if (x.status !== 200) problems.push(`a backup upload was refused with ${x.status}`);
  }
  const final = lines.find((l): l is Extract<RunLine, { t: "backup-final" }> => l.t === "backup-final");
  if (final === undefined)
    return { problems: [...problems, "the final run reported no backup state"], uploads, sessions: 0 };
  if (final.version !== version)
    problems.push(`the final run uses backup version ${final.version}, not ${version}`);
  if (final.backedUp !== final.total) {
    problems.push(
      `the final run has ${final.total - final.backedUp} of ${final.total} room keys not marked backed up`,
    );
  }
  const held = server.keys.get(version ?? "") ?? new Map<string, number>();
  for (const entry of final.sessions) {
    const [roomId, sessionId, index] = entry.split("|");
    const backedUp = held.get(`${roomId}|${sessionId}`);
    if (backedUp === undefined) problems.push(`room key ${sessionId} of ${roomId} is not in the backup`);
    else if (backedUp > Number(index)) {
      problems.push(
        `room key ${sessionId} is in the backup from index ${backedUp}, the victim holds it from ${index}`,
      );
    }
  }
  return { problems, uploads, sessions: final.sessions.length };
}
