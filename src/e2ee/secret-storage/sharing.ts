/**
 * Secret sharing between a user's own devices (`m.secret.request`, `m.secret.send`): parsing and
 * building the to-device contents, and the two decisions, as pure functions. The rules: requests
 * are answered only for our own *verified* devices (never another user's, never our own device ID),
 * and `m.secret.send` is accepted only over Olm, from our own verified device, for a request we made.
 */
import { SecretStorageError } from "../../crypto/secret-storage/errors.ts";
import { randomAlphanumeric } from "../../crypto/secret-storage/random.ts";
import { isRecord } from "../../wire/json.ts";
import { isId } from "../limits.ts";
import { isSecretName } from "./names.ts";

export const SECRET_REQUEST_TYPE = "m.secret.request";
export const SECRET_SEND_TYPE = "m.secret.send";
/** Outstanding requests we keep; older ones are forgotten (and their answers refused). */
export const MAX_OUTSTANDING_SECRET_REQUESTS = 32;
/** Longest secret value we accept in `m.secret.send` (keys are 43 characters). */
export const MAX_SHARED_SECRET_LENGTH = 16 * 1024;

export type SecretRequest =
  | {
      readonly action: "request";
      readonly name: string;
      readonly requestingDeviceId: string;
      readonly requestId: string;
    }
  | {
      readonly action: "request_cancellation";
      readonly requestingDeviceId: string;
      readonly requestId: string;
    };

export interface SecretSend {
  readonly requestId: string;
  readonly secret: string;
}

function bad(why: string): SecretStorageError {
  return new SecretStorageError("BAD_ARGUMENT", `secret sharing: ${why}`);
}

/** Validates `m.secret.request` content. Throws `SecretStorageError` `BAD_ARGUMENT`. */
export function parseSecretRequest(content: unknown): SecretRequest {
  if (!isRecord(content)) throw bad("content is not an object");
  const { action, requesting_device_id: device, request_id: requestId } = content;
  if (!isId(device) || !isId(requestId)) throw bad("missing requesting_device_id or request_id");
  if (action === "request_cancellation") {
    return { action, requestingDeviceId: device, requestId };
  }
  if (action !== "request") throw bad("unknown action");
  if (!isSecretName(content.name)) throw bad("missing secret name");
  return { action, name: content.name, requestingDeviceId: device, requestId };
}

/** `m.secret.request` content asking our other devices for `name`. */
export function buildSecretRequest(
  name: string,
  ownDeviceId: string,
  requestId: string = randomAlphanumeric(24),
): Record<string, string> {
  if (!isSecretName(name) || !isId(ownDeviceId) || !isId(requestId)) throw bad("invalid request");
  return { action: "request", name, requesting_device_id: ownDeviceId, request_id: requestId };
}

export function buildSecretRequestCancellation(
  ownDeviceId: string,
  requestId: string,
): Record<string, string> {
  if (!isId(ownDeviceId) || !isId(requestId)) throw bad("invalid cancellation");
  return { action: "request_cancellation", requesting_device_id: ownDeviceId, request_id: requestId };
}

/** Validates `m.secret.send` content (the decrypted Olm payload's content). */
export function parseSecretSend(content: unknown): SecretSend {
  if (!isRecord(content)) throw bad("content is not an object");
  const { request_id: requestId, secret } = content;
  if (!isId(requestId)) throw bad("missing request_id");
  if (typeof secret !== "string" || secret.length === 0 || secret.length > MAX_SHARED_SECRET_LENGTH) {
    throw bad("missing or oversized secret");
  }
  return { requestId, secret };
}

export function buildSecretSend(requestId: string, secret: string): Record<string, string> {
  if (!isId(requestId) || typeof secret !== "string") throw bad("invalid send");
  return { request_id: requestId, secret };
}

/** What we know about the device a request came from (looked up by the machine). */
export interface RequestingDevice {
  readonly userId: string;
  readonly deviceId: string;
  /** Verified by us (cross-signed by our self-signing key, or locally verified). */
  readonly verified: boolean;
}

export type SecretRequestDecision =
  | { readonly answer: true }
  | {
      readonly answer: false;
      readonly reason: "not_own_user" | "own_device" | "device_mismatch" | "unverified_device" | "not_held";
    };

/**
 * Whether to answer a request with the secret. `held` says whether we have the secret at all.
 * The request's `requesting_device_id` must be the sending device (the to-device sender).
 */
export function decideSecretRequest(
  request: SecretRequest & { readonly action: "request" },
  from: RequestingDevice,
  own: { readonly userId: string; readonly deviceId: string },
  held: boolean,
): SecretRequestDecision {
  if (from.userId !== own.userId) return { answer: false, reason: "not_own_user" };
  if (from.deviceId === own.deviceId) return { answer: false, reason: "own_device" };
  if (request.requestingDeviceId !== from.deviceId) return { answer: false, reason: "device_mismatch" };
  if (!from.verified) return { answer: false, reason: "unverified_device" };
  if (!held) return { answer: false, reason: "not_held" };
  return { answer: true };
}

/** A request we sent and still wait for. */
export interface OutstandingSecretRequest {
  readonly requestId: string;
  readonly name: string;
}

export type SecretSendDecision =
  | { readonly accept: true; readonly name: string }
  | {
      readonly accept: false;
      readonly reason: "not_olm" | "not_own_user" | "unverified_device" | "unknown_request";
    };

/**
 * Whether to accept a received secret. `viaOlm` must say the event was an Olm-encrypted to-device
 * message (never plaintext); the sender must be our own verified device; the request ID must be
 * one we sent (then the secret is for that request's name, and the request should be cancelled
 * at our other devices).
 */
export function decideSecretSend(
  send: SecretSend,
  from: RequestingDevice & { readonly viaOlm: boolean },
  ownUserId: string,
  outstanding: ReadonlyMap<string, OutstandingSecretRequest>,
): SecretSendDecision {
  if (!from.viaOlm) return { accept: false, reason: "not_olm" };
  if (from.userId !== ownUserId) return { accept: false, reason: "not_own_user" };
  if (!from.verified) return { accept: false, reason: "unverified_device" };
  const request = outstanding.get(send.requestId);
  if (request === undefined) return { accept: false, reason: "unknown_request" };
  return { accept: true, name: request.name };
}

/** One to-device send: the event type and `messages[user][device]` (device `*` = all of them). */
export interface SecretSharingToDevice {
  readonly eventType: typeof SECRET_REQUEST_TYPE;
  readonly messages: Record<string, Record<string, Record<string, string>>>;
}

/**
 * What a newly verified own device sends to ask its other devices for `names` (by default the
 * cross-signing keys and the backup key): one request per secret to all our devices, and the
 * records to remember. Requests are plain to-device messages; answers must come back over Olm.
 */
export function buildSecretRequests(
  own: { readonly userId: string; readonly deviceId: string },
  names: readonly string[],
): { readonly toDevice: SecretSharingToDevice[]; readonly outstanding: OutstandingSecretRequest[] } {
  if (names.length > MAX_OUTSTANDING_SECRET_REQUESTS) throw bad("too many secrets at once");
  const outstanding = names.map((name) => ({ requestId: randomAlphanumeric(24), name }));
  const toDevice = outstanding.map(
    ({ requestId, name }): SecretSharingToDevice => ({
      eventType: SECRET_REQUEST_TYPE,
      messages: { [own.userId]: { "*": buildSecretRequest(name, own.deviceId, requestId) } },
    }),
  );
  return { toDevice, outstanding };
}

/**
 * Adds `request` to the outstanding map, forgetting the oldest beyond
 * {@link MAX_OUTSTANDING_SECRET_REQUESTS} (their late answers are then refused).
 */
export function rememberSecretRequest(
  outstanding: Map<string, OutstandingSecretRequest>,
  request: OutstandingSecretRequest,
): void {
  outstanding.delete(request.requestId);
  outstanding.set(request.requestId, request);
  while (outstanding.size > MAX_OUTSTANDING_SECRET_REQUESTS) {
    const oldest = outstanding.keys().next();
    if (oldest.done === true) break;
    outstanding.delete(oldest.value);
  }
}
