/**
 * The requests the machine asks its driver to send, and the validation of their responses. The
 * driver dispatches `OutgoingRequest` with one exhaustive `switch` on `type` and hands the parsed
 * JSON response body back through `OlmMachine.markRequestAsSent(id, response)`.
 */
import { z } from "zod";
import { E2eeError } from "./errors.ts";

/** A signed JSON object as it travels in key uploads and queries. */
export type Signatures = Record<string, Record<string, string>>;

export interface DeviceKeysJson {
  user_id: string;
  device_id: string;
  algorithms: string[];
  keys: Record<string, string>;
  signatures?: Signatures;
  unsigned?: { device_display_name?: string };
}

export interface SignedKeyJson {
  key: string;
  fallback?: boolean;
  signatures?: Signatures;
}

/** `POST /_matrix/client/v3/keys/upload`. */
export interface KeysUploadRequest {
  readonly id: string;
  readonly type: "keys_upload";
  readonly body: {
    device_keys?: DeviceKeysJson;
    one_time_keys?: Record<string, SignedKeyJson>;
    fallback_keys?: Record<string, SignedKeyJson>;
  };
}

/** `POST /_matrix/client/v3/keys/query`. */
export interface KeysQueryRequest {
  readonly id: string;
  readonly type: "keys_query";
  readonly body: { device_keys: Record<string, string[]>; timeout?: number };
}

/** `POST /_matrix/client/v3/keys/claim`. */
export interface KeysClaimRequest {
  readonly id: string;
  readonly type: "keys_claim";
  readonly body: { one_time_keys: Record<string, Record<string, string>>; timeout?: number };
}

/**
 * `PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}`: the request `id` is the transaction
 * ID, so a retry after a lost response is deduplicated by the server.
 */
export interface ToDeviceRequest {
  readonly id: string;
  readonly type: "to_device";
  readonly eventType: string;
  readonly body: { messages: Record<string, Record<string, Record<string, unknown>>> };
}

/** `POST /_matrix/client/v3/keys/signatures/upload` (cross-signing; emitted by the verification layer). */
export interface SignatureUploadRequest {
  readonly id: string;
  readonly type: "signature_upload";
  readonly body: Record<string, Record<string, Record<string, unknown>>>;
}

/**
 * `POST /_matrix/client/v3/keys/device_signing/upload`: our new cross-signing public keys. Not an
 * `OutgoingRequest`: servers ask for User-Interactive Auth on it, so the caller sends it (see
 * `OlmMachine.bootstrapCrossSigning`) and marks it sent like any other request.
 */
export interface SigningKeysUploadRequest {
  readonly id: string;
  readonly type: "signing_keys_upload";
  readonly body: {
    master_key: Record<string, unknown>;
    self_signing_key: Record<string, unknown>;
    user_signing_key: Record<string, unknown>;
  };
}

export type OutgoingRequest =
  | KeysUploadRequest
  | KeysQueryRequest
  | KeysClaimRequest
  | ToDeviceRequest
  | SignatureUploadRequest;

export type OutgoingRequestType = OutgoingRequest["type"];

// ---- responses (validated once, here) ----

const signaturesSchema = z.record(z.string(), z.record(z.string(), z.string()));

export const deviceKeysSchema = z
  .object({
    user_id: z.string(),
    device_id: z.string(),
    algorithms: z.array(z.string()),
    keys: z.record(z.string(), z.string()),
    signatures: signaturesSchema.optional(),
    unsigned: z.object({ device_display_name: z.string().optional() }).loose().optional(),
  })
  .loose(); // unknown fields kept: the signature covers them

const keysUploadResponseSchema = z.object({
  one_time_key_counts: z.record(z.string(), z.number().int().nonnegative()),
});

const keysQueryResponseSchema = z.object({
  // Entries are validated one by one later: one bad device must not spoil the others.
  device_keys: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  failures: z.record(z.string(), z.unknown()).optional(),
  // Cross-signing keys, checked one by one later (cross-signing/keys.ts).
  master_keys: z.record(z.string(), z.unknown()).optional(),
  self_signing_keys: z.record(z.string(), z.unknown()).optional(),
  user_signing_keys: z.record(z.string(), z.unknown()).optional(),
});

const signedKeySchema = z.object({
  key: z.string(),
  fallback: z.boolean().optional(),
  signatures: signaturesSchema.optional(),
});

const keysClaimResponseSchema = z.object({
  one_time_keys: z.record(z.string(), z.record(z.string(), z.record(z.string(), z.unknown()))),
  failures: z.record(z.string(), z.unknown()).optional(),
});

export type KeysUploadResponse = z.infer<typeof keysUploadResponseSchema>;
export type KeysQueryResponse = z.infer<typeof keysQueryResponseSchema>;
export type KeysClaimResponse = z.infer<typeof keysClaimResponseSchema>;
export type SignedKey = z.infer<typeof signedKeySchema>;
export type ValidDeviceKeys = z.infer<typeof deviceKeysSchema>;

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new E2eeError("BAD_RESPONSE", `malformed ${what} response`);
  return result.data;
}

export function parseKeysUploadResponse(value: unknown): KeysUploadResponse {
  return parse(keysUploadResponseSchema, value, "keys/upload");
}

export function parseKeysQueryResponse(value: unknown): KeysQueryResponse {
  return parse(keysQueryResponseSchema, value, "keys/query");
}

export function parseKeysClaimResponse(value: unknown): KeysClaimResponse {
  return parse(keysClaimResponseSchema, value, "keys/claim");
}

/** One claimed key, or undefined if the entry is malformed. */
export function parseSignedKey(value: unknown): SignedKey | undefined {
  const result = signedKeySchema.safeParse(value);
  return result.success ? result.data : undefined;
}

/** One device's keys, or undefined if the entry is malformed. */
export function parseDeviceKeys(value: unknown): ValidDeviceKeys | undefined {
  const result = deviceKeysSchema.safeParse(value);
  return result.success ? result.data : undefined;
}
