// End-to-end encryption key endpoints: upload, query, claim, changes.

import { jsonObjectSchema, storableWithin } from "./json.ts";
import * as z from "./zod.ts";

export const signaturesSchema = z.record(z.string(), z.record(z.string(), z.string()));
export type Signatures = z.infer<typeof signaturesSchema>;

/** A device's identity keys, signed; unknown fields are kept because the signature covers them. */
export const deviceKeysSchema = z.looseObject({
  user_id: z.string(),
  device_id: z.string(),
  algorithms: z.array(z.string()),
  keys: z.record(z.string(), z.string()),
  signatures: z.optional(signaturesSchema),
  unsigned: z.optional(z.looseObject({ device_display_name: z.optional(z.string()) })),
});
export type DeviceKeys = z.infer<typeof deviceKeysSchema>;

/** A signed one-time or fallback key; the map value in uploads and claims (`signed_curve25519:ID`). */
export const signedKeySchema = z.looseObject({
  key: z.string(),
  fallback: z.optional(z.boolean()),
  signatures: z.optional(signaturesSchema),
});
export type SignedKey = z.infer<typeof signedKeySchema>;

/** `POST /_matrix/client/v3/keys/upload`. Key values may be a signed object or (legacy) a bare string. */
export interface KeysUploadRequest {
  device_keys?: DeviceKeys;
  one_time_keys?: Record<string, SignedKey | string>;
  fallback_keys?: Record<string, SignedKey>;
}
export const keysUploadResponseSchema = z.looseObject({
  one_time_key_counts: z.record(z.string(), z.number().check(z.int(), z.nonnegative())),
});
export type KeysUploadResponse = z.infer<typeof keysUploadResponseSchema>;

/** `POST /_matrix/client/v3/keys/query`. */
export interface KeysQueryRequest {
  device_keys: Record<string, string[]>;
  timeout?: number;
}
/** Device entries stay unparsed here: each is validated (and its signature checked) on its own. */
export const keysQueryResponseSchema = z.looseObject({
  device_keys: z.optional(z.record(z.string(), z.record(z.string(), z.unknown()))),
  failures: z.optional(z.record(z.string(), z.unknown())),
  master_keys: z.optional(z.record(z.string(), z.unknown())),
  self_signing_keys: z.optional(z.record(z.string(), z.unknown())),
  user_signing_keys: z.optional(z.record(z.string(), z.unknown())),
});
export type KeysQueryResponse = z.infer<typeof keysQueryResponseSchema>;

/** `POST /_matrix/client/v3/keys/claim`: user → device → algorithm. */
export interface KeysClaimRequest {
  one_time_keys: Record<string, Record<string, string>>;
  timeout?: number;
}
export const keysClaimResponseSchema = z.looseObject({
  one_time_keys: z.record(z.string(), z.record(z.string(), z.record(z.string(), z.unknown()))),
  failures: z.optional(z.record(z.string(), z.unknown())),
});
export type KeysClaimResponse = z.infer<typeof keysClaimResponseSchema>;

/** `GET /_matrix/client/v3/keys/changes`. */
export const keysChangesResponseSchema = z.looseObject({
  changed: z.optional(z.array(z.string())),
  left: z.optional(z.array(z.string())),
});
export type KeysChangesResponse = z.infer<typeof keysChangesResponseSchema>;

/** `PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}`: user → device (or `*`) → content. */
export interface SendToDeviceRequest {
  messages: Record<string, Record<string, Record<string, unknown>>>;
}
export const sendToDeviceRequestSchema = z.object({
  messages: z.record(z.string(), z.record(z.string(), jsonObjectSchema)),
});

/**
 * Longest key backup version accepted from `/room_keys/version` (Synapse's are decimal counters):
 * the crypto store keeps the version in use as an ID, and refuses one past its own bound.
 */
export const MAX_BACKUP_VERSION_LENGTH = 255;
/**
 * Deepest nesting of a backup version's `auth_data`, the object being level 1 (a real one nests 3
 * levels: `signatures`, then the user's signatures). The crypto store keeps it whole, and refuses
 * values nesting past its own bound.
 */
export const MAX_BACKUP_AUTH_DATA_DEPTH = 16;
/**
 * Largest backup version `auth_data` kept (its JSON length): a real one is a public key and a few
 * signatures (well under 1 KB); the server can add signatures by keys we do not know without bound,
 * and the crypto store keeps it whole, read again at every start.
 */
export const MAX_BACKUP_AUTH_DATA_BYTES = 64 * 1024;

/**
 * `GET` and `POST /_matrix/client/v3/room_keys/version`: a version, or its ID alone. The rest (the
 * algorithm, the public key, signatures) is the E2EE engine's to check; what it keeps is checked
 * here, so that a version the store would refuse never fails every check of the backup again.
 */
export const backupVersionResponseSchema = z.looseObject({
  version: z.optional(
    z.string().check(
      z.minLength(1),
      z.maxLength(MAX_BACKUP_VERSION_LENGTH),
      z.refine((s) => s.isWellFormed(), "not well-formed Unicode"),
    ),
  ),
  auth_data: z.optional(
    z.unknown().check(
      z.refine((v) => storableWithin(v, MAX_BACKUP_AUTH_DATA_DEPTH), {
        message: `nests deeper than ${MAX_BACKUP_AUTH_DATA_DEPTH} levels`,
      }),
    ),
  ),
});
