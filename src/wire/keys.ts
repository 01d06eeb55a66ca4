// End-to-end encryption key endpoints: upload, query, claim, changes.

import { jsonObjectSchema } from "./json.ts";
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
