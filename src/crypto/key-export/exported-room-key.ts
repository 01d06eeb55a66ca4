import { KeyExportError } from "./errors.ts";

/**
 * One room key as it appears in key export files and `m.forwarded_room_key`-style exports
 * (the spec's `ExportedSessionData` plus `room_id`, `session_id` and `algorithm`).
 */
export interface ExportedRoomKey {
  algorithm: string;
  room_id: string;
  sender_key: string;
  session_id: string;
  /** The Megolm session in the v1 export format (no signature), unpadded base64. */
  session_key: string;
  sender_claimed_keys: Record<string, string>;
  forwarding_curve25519_key_chain: string[];
  /** The session may be shared with users invited later (MSC4268, spec v1.19); absent means false. */
  shared_history?: boolean;
  /** The same flag under matrix-rust-sdk's name (`RUST_SHARED_HISTORY_FIELD`), written beside it. */
  [RUST_SHARED_HISTORY_FIELD]?: boolean;
}

/**
 * The shared-history flag of a room key, export entry or backed-up key: the spec's
 * `shared_history`, or a name other SDKs still write (`m.shared_history`, ruma;
 * `org.matrix.msc3061.shared_history`, the rust-sdk and older matrix-js-sdk). Undefined when none
 * is a boolean.
 */
export function readSharedHistory(value: Readonly<Record<string, unknown>>): boolean | undefined {
  for (const name of SHARED_HISTORY_FIELDS) {
    const v = value[name];
    if (typeof v === "boolean") return v;
  }
  return undefined;
}

/**
 * matrix-rust-sdk's name for the flag (Element), the one every version of it reads: it wrote and
 * read only this one until April 2026, then writes `m.shared_history` and reads both, as one field
 * (a serde alias): a record carrying both of its names fails to parse there ("duplicate field"),
 * so only this one is written beside the spec's `shared_history`, which it does not read.
 */
export const RUST_SHARED_HISTORY_FIELD = "org.matrix.msc3061.shared_history";

/** Where the flag is read, the spec's name first. */
export const SHARED_HISTORY_FIELDS = [
  "shared_history",
  "m.shared_history",
  "org.matrix.msc3061.shared_history",
] as const;

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === "string")
  );
}

/**
 * Checks one untrusted entry of an export. Returns the typed key, or a reason it was skipped: export
 * files from other clients may hold algorithms we don't know, which must not spoil the whole import.
 */
export function parseExportedRoomKey(entry: unknown): ExportedRoomKey | string {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return "entry is not an object";
  const e = entry as Record<string, unknown>;
  for (const field of ["algorithm", "room_id", "sender_key", "session_id", "session_key"] as const) {
    if (typeof e[field] !== "string" || e[field] === "") return `missing or invalid ${field}`;
  }
  const claimed = e.sender_claimed_keys ?? {};
  if (!isStringRecord(claimed)) return "invalid sender_claimed_keys";
  const chain = e.forwarding_curve25519_key_chain ?? [];
  if (!Array.isArray(chain) || !chain.every((k) => typeof k === "string")) {
    return "invalid forwarding_curve25519_key_chain";
  }
  const shared = readSharedHistory(e);
  return {
    algorithm: e.algorithm as string,
    room_id: e.room_id as string,
    sender_key: e.sender_key as string,
    session_id: e.session_id as string,
    session_key: e.session_key as string,
    sender_claimed_keys: claimed,
    forwarding_curve25519_key_chain: chain as string[],
    ...(shared === true ? { shared_history: true } : {}),
  };
}

/** Parses the decrypted JSON payload of an export file: a list of room keys. */
export function parseExportPayload(json: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new KeyExportError("BAD_CONTENT", "decrypted export is not JSON");
  }
  if (!Array.isArray(parsed))
    throw new KeyExportError("BAD_CONTENT", "decrypted export is not a list of keys");
  return parsed;
}
