// Event IDs, canonical JSON and the redaction algorithm (room versions 10 and 11).
import { createHash } from "node:crypto";
import { canonicalJson, verifySignedJson } from "../crypto/json/index.ts";
import type { JsonObject, RoomEvent } from "./types.ts";

export const SUPPORTED_ROOM_VERSIONS = ["10", "11"] as const;
export type RoomVersion = (typeof SUPPORTED_ROOM_VERSIONS)[number];
export const DEFAULT_ROOM_VERSION: RoomVersion = "10";

export function isRoomVersion(v: string): v is RoomVersion {
  return (SUPPORTED_ROOM_VERSIONS as readonly string[]).includes(v);
}

export { CanonicalJsonError, canonicalJson } from "../crypto/json/index.ts";

export function base64UrlUnpadded(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

/**
 * Room v4+ event IDs are `$` + URL-safe base64 of the reference hash. This server has no PDUs, so it
 * hashes the fields that make the event unique (including its stream position, standing in for depth).
 */
export function computeEventId(fields: JsonObject): string {
  return `$${base64UrlUnpadded(createHash("sha256").update(canonicalJson(fields)).digest())}`;
}

/** Verifies `obj.signatures[userId][keyId]` (Ed25519 over canonical JSON); false for anything malformed. */
export function verifySignedObject(
  obj: JsonObject,
  userId: string,
  keyId: string,
  publicKey: string,
): boolean {
  return verifySignedJson(obj, userId, keyId, publicKey);
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
