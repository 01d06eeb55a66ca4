/**
 * The requests the machine asks its driver to send, and the validation of their responses. The
 * driver dispatches `OutgoingRequest` with one exhaustive `switch` on `type` and hands the parsed
 * JSON response body back through `OlmMachine.markRequestAsSent(request, response)`.
 */

import {
  type DeviceKeys,
  deviceKeysSchema,
  type KeysClaimRequest as KeysClaimBody,
  type KeysClaimResponse,
  type KeysQueryRequest as KeysQueryBody,
  type KeysQueryResponse,
  type KeysUploadResponse,
  keysClaimResponseSchema,
  keysQueryResponseSchema,
  keysUploadResponseSchema,
  type SendToDeviceRequest as SendToDeviceBody,
  type SignedKey,
  signedKeySchema,
} from "../wire/keys.ts";
import type * as z from "../wire/zod.ts";
import { E2eeError } from "./errors.ts";

/** Device keys as we build and upload them (the wire's `DeviceKeys`). */
export type DeviceKeysJson = DeviceKeys;
/** A signed one-time or fallback key as we build and upload it (the wire's `SignedKey`). */
export type SignedKeyJson = SignedKey;

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
  readonly body: KeysQueryBody;
}

/** `POST /_matrix/client/v3/keys/claim`. */
export interface KeysClaimRequest {
  readonly id: string;
  readonly type: "keys_claim";
  readonly body: KeysClaimBody;
}

/**
 * `PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}`: the request `id` is the transaction
 * ID, so a retry after a lost response is deduplicated by the server.
 */
export interface ToDeviceRequest {
  readonly id: string;
  readonly type: "to_device";
  readonly eventType: string;
  readonly body: SendToDeviceBody;
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

// ---- responses: the wire's schemas (src/wire/keys.ts), applied once, here ----

export type { KeysClaimResponse, KeysQueryResponse, KeysUploadResponse, SignedKey };
/** Device keys that passed the wire schema (their signature is checked after). */
export type ValidDeviceKeys = DeviceKeys;

function parse<T>(schema: z.ZodMiniType<T>, value: unknown, what: string): T {
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
