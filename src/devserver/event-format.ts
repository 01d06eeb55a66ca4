// Event IDs, canonical JSON and the redaction algorithm (room versions 10 and 11).
import { createHash, createPublicKey, verify } from "node:crypto";
import type { JsonObject, RoomEvent } from "./types.ts";

export const SUPPORTED_ROOM_VERSIONS = ["10", "11"] as const;
export type RoomVersion = (typeof SUPPORTED_ROOM_VERSIONS)[number];
export const DEFAULT_ROOM_VERSION: RoomVersion = "10";

export function isRoomVersion(v: string): v is RoomVersion {
  return (SUPPORTED_ROOM_VERSIONS as readonly string[]).includes(v);
}

export class CanonicalJsonError extends Error {
  override readonly name = "CanonicalJsonError";
  readonly code = "NOT_CANONICALIZABLE";
}

/** Matrix canonical JSON: sorted keys, no insignificant whitespace, integers only. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value))
      throw new CanonicalJsonError("canonical JSON allows only safe integers");
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
  }
  throw new CanonicalJsonError(`cannot encode ${typeof value}`);
}

export function base64UrlUnpadded(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

export function base64Unpadded(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64").replace(/=+$/, "");
}

/** Decodes standard or URL-safe base64 with or without padding; undefined when malformed. */
export function decodeBase64(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) return undefined;
  return Buffer.from(s.replace(/-/g, "+").replace(/_/g, "/"), "base64");
}

/**
 * Room v4+ event IDs are `$` + URL-safe base64 of the reference hash. This server has no PDUs, so it
 * hashes the fields that make the event unique (including its stream position, standing in for depth).
 */
export function computeEventId(fields: JsonObject): string {
  return `$${base64UrlUnpadded(createHash("sha256").update(canonicalJson(fields)).digest())}`;
}

const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** Checks an unpadded-base64 Ed25519 signature of `message` by an unpadded-base64 public key. */
export function ed25519VerifyBase64(publicKey: string, message: string, signature: string): boolean {
  const key = decodeBase64(publicKey);
  const sig = decodeBase64(signature);
  if (key?.length !== 32 || sig?.length !== 64) return false;
  try {
    const k = createPublicKey({
      key: Buffer.concat([ED25519_SPKI_PREFIX, key]),
      format: "der",
      type: "spki",
    });
    return verify(null, Buffer.from(message, "utf8"), k, sig);
  } catch {
    return false;
  }
}

/** Verifies `obj.signatures[userId][keyId]` over the canonical JSON of `obj` without signatures/unsigned. */
export function verifySignedObject(
  obj: JsonObject,
  userId: string,
  keyId: string,
  publicKey: string,
): boolean {
  const sigs = obj.signatures as Record<string, Record<string, unknown>> | undefined;
  const sig = sigs?.[userId]?.[keyId];
  if (typeof sig !== "string") return false;
  const { signatures: _s, unsigned: _u, ...rest } = obj;
  let message: string;
  try {
    message = canonicalJson(rest);
  } catch {
    return false;
  }
  return ed25519VerifyBase64(publicKey, message, sig);
}

const KEEP_TOP = ["event_id", "type", "room_id", "sender", "state_key", "content", "origin_server_ts"];

function keptContentKeys(type: string, version: string): string[] | "all" {
  const v11 = version === "11";
  switch (type) {
    case "m.room.member":
      return v11 ? ["membership", "join_authorised_via_users_server", "third_party_invite"] : ["membership"];
    case "m.room.create":
      return v11 ? "all" : ["creator"];
    case "m.room.join_rules":
      return ["join_rule", "allow"];
    case "m.room.power_levels": {
      const base = [
        "ban",
        "events",
        "events_default",
        "kick",
        "redact",
        "state_default",
        "users",
        "users_default",
      ];
      return v11 ? [...base, "invite"] : base;
    }
    case "m.room.history_visibility":
      return ["history_visibility"];
    case "m.room.redaction":
      return v11 ? ["redacts"] : [];
    default:
      return [];
  }
}

/** The spec's redaction algorithm, applied to the client-visible event. */
export function redactEvent(ev: RoomEvent, version: string, redactedBecause: RoomEvent): RoomEvent {
  const out: Record<string, unknown> = {};
  for (const k of KEEP_TOP) {
    const val = (ev as unknown as Record<string, unknown>)[k];
    if (val !== undefined) out[k] = val;
  }
  const keep = keptContentKeys(ev.type, version);
  let content: JsonObject = {};
  if (keep === "all") content = ev.content;
  else {
    for (const k of keep) if (ev.content[k] !== undefined) content[k] = ev.content[k];
    if (ev.type === "m.room.member" && version === "11") {
      const tpi = ev.content.third_party_invite as JsonObject | undefined;
      if (tpi && typeof tpi === "object") content.third_party_invite = { signed: tpi.signed };
      else delete content.third_party_invite;
    }
  }
  out.content = content;
  out.unsigned = { redacted_because: redactedBecause };
  return out as unknown as RoomEvent;
}
