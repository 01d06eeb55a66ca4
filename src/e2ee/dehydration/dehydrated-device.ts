/**
 * Dehydrated devices (MSC3814, the unstable endpoints the rust-sdk and matrix-js-sdk use), as pure
 * functions: build the `PUT …/dehydrated_device` body for a fresh account, read the `GET` answer
 * and rehydrate it, and page through `…/dehydrated_device/{id}/events` (`GET ?from=` in the current
 * draft, `POST { next_batch }` in the earlier one; a page without `next_batch` or an empty page
 * ends it). The client sends.
 */

import type { Signatures } from "../../crypto/json/index.ts";
import {
  DEHYDRATED_DEVICE_ALGORITHM,
  type DehydratedDevicePickle,
  fromDehydratedDevice,
  toDehydratedDevice,
} from "../../crypto/olm/account/dehydrated-device.ts";
import { Account, OlmError } from "../../crypto/olm/index.ts";
import { isRecord } from "../../wire/json.ts";
import { isId } from "../limits.ts";
import { signWithAccount } from "../signing.ts";
import { DehydrationError } from "./errors.ts";

export { DehydrationError, type DehydrationErrorCode } from "./errors.ts";

export const DEHYDRATED_DEVICE_PATH = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device";
/** One-time keys a dehydrated device uploads (as the rust-sdk does). */
export const DEHYDRATED_DEVICE_ONE_TIME_KEYS = 50;
/** Most to-device events we take from a dehydrated device in all (the rust-sdk's cap). */
export const MAX_DEHYDRATED_DEVICE_EVENTS = 100_000;
/** Most events we accept in one page. */
export const MAX_DEHYDRATED_DEVICE_EVENTS_PAGE = 1000;

export interface DehydratedDeviceData {
  readonly algorithm: typeof DEHYDRATED_DEVICE_ALGORITHM;
  readonly device_pickle: string;
  readonly nonce: string;
}

type SignedKey = { key: string; fallback?: true; signatures: Signatures };

/** The `PUT …/dehydrated_device` body. */
export interface DehydratedDeviceUpload {
  readonly device_id: string;
  readonly initial_device_display_name: string;
  readonly device_data: DehydratedDeviceData;
  readonly device_keys: Record<string, unknown> & { signatures: Signatures };
  readonly one_time_keys: Record<string, SignedKey>;
  readonly fallback_keys: Record<string, SignedKey>;
}

/** Adds a cross-signing signature (the self-signing key's) to the device keys; optional. */
export interface DeviceKeysSigner {
  signObject<T extends Record<string, unknown>>(userId: string, obj: T): T & { signatures: Signatures };
}

/**
 * A new dehydrated device: a fresh account with one-time keys and a fallback key, all marked
 * published, sealed under `key` (the `org.matrix.msc3814` secret). The device ID is the account's
 * Curve25519 key, as the rust-sdk makes it. Pass `selfSigning` so that our other devices and
 * other users trust it (clients share keys only with cross-signed dehydrated devices).
 */
export function createDehydratedDevice(options: {
  readonly userId: string;
  readonly key: Uint8Array;
  readonly displayName: string;
  readonly selfSigning?: DeviceKeysSigner;
}): { readonly deviceId: string; readonly body: DehydratedDeviceUpload } {
  const { userId, key, displayName } = options;
  if (!isId(userId)) throw new DehydrationError("BAD_ARGUMENT", "invalid user ID");
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new DehydrationError("BAD_ARGUMENT", "a dehydrated-device key is 32 bytes");
  }
  const account = Account.create();
  try {
    const deviceId = account.identityKeys.curve25519;
    account.generateOneTimeKeys(DEHYDRATED_DEVICE_ONE_TIME_KEYS);
    account.generateFallbackKey();
    const sign = <T extends Record<string, unknown>>(obj: T) =>
      signWithAccount(account, userId, deviceId, obj);
    const oneTimeKeys: Record<string, SignedKey> = {};
    for (const [id, k] of Object.entries(account.oneTimeKeys()))
      oneTimeKeys[`signed_curve25519:${id}`] = sign({ key: k });
    const fallbackKeys: Record<string, SignedKey> = {};
    for (const [id, k] of Object.entries(account.fallbackKey())) {
      fallbackKeys[`signed_curve25519:${id}`] = sign({ key: k, fallback: true as const });
    }
    account.markKeysAsPublished();
    let deviceKeys = sign({
      algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
      dehydrated: true,
      device_id: deviceId,
      keys: {
        [`curve25519:${deviceId}`]: account.identityKeys.curve25519,
        [`ed25519:${deviceId}`]: account.identityKeys.ed25519,
      },
      user_id: userId,
    });
    if (options.selfSigning !== undefined) deviceKeys = options.selfSigning.signObject(userId, deviceKeys);
    const pickle = toDehydratedDevice(account, key);
    return {
      deviceId,
      body: {
        device_id: deviceId,
        initial_device_display_name: displayName,
        device_data: {
          algorithm: DEHYDRATED_DEVICE_ALGORITHM,
          device_pickle: pickle.ciphertext,
          nonce: pickle.nonce,
        },
        device_keys: deviceKeys,
        one_time_keys: oneTimeKeys,
        fallback_keys: fallbackKeys,
      },
    };
  } finally {
    account.wipe();
  }
}

/** Validates the `GET …/dehydrated_device` answer. */
export function parseDehydratedDevice(body: unknown): {
  readonly deviceId: string;
  readonly deviceData: DehydratedDeviceData;
} {
  if (!isRecord(body) || !isId(body.device_id) || !isRecord(body.device_data)) {
    throw new DehydrationError("BAD_RESPONSE", "a dehydrated device has device_id and device_data");
  }
  const data = body.device_data;
  if (data.algorithm !== DEHYDRATED_DEVICE_ALGORITHM) {
    throw new DehydrationError("UNSUPPORTED_ALGORITHM", "the dehydrated device is not in the v2 format");
  }
  if (typeof data.device_pickle !== "string" || typeof data.nonce !== "string") {
    throw new DehydrationError("BAD_RESPONSE", "device_data needs device_pickle and nonce");
  }
  return {
    deviceId: body.device_id,
    deviceData: {
      algorithm: DEHYDRATED_DEVICE_ALGORITHM,
      device_pickle: data.device_pickle,
      nonce: data.nonce,
    },
  };
}

/** The account inside a dehydrated device. `WRONG_KEY` or `BAD_PICKLE`. */
export function rehydrateDevice(deviceData: DehydratedDeviceData, key: Uint8Array): Account {
  const pickle: DehydratedDevicePickle = { ciphertext: deviceData.device_pickle, nonce: deviceData.nonce };
  try {
    return fromDehydratedDevice(pickle, key);
  } catch (e) {
    if (!(e instanceof OlmError)) throw e;
    if (e.code === "DECRYPTION_FAILED")
      throw new DehydrationError("WRONG_KEY", "this key does not open the device");
    if (e.code === "BAD_ARGUMENT") throw new DehydrationError("BAD_ARGUMENT", e.message);
    throw new DehydrationError("BAD_PICKLE", "the dehydrated device is malformed");
  }
}

/** The body of `POST …/dehydrated_device/{deviceId}/events` (the earlier draft). */
export function dehydratedEventsRequest(nextBatch?: string): { next_batch?: string } {
  return nextBatch === undefined ? {} : { next_batch: nextBatch };
}

/**
 * One page of a dehydrated device's to-device events. `received` is how many were taken before;
 * `done` is true on an empty page, a page without `next_batch`, or once
 * {@link MAX_DEHYDRATED_DEVICE_EVENTS} is reached (the rest is dropped rather than looping forever);
 * `truncated` then says the cap cut the device's events short: this page had more than room was
 * left for, or the server offered a next page.
 */
export function parseDehydratedEventsPage(
  body: unknown,
  received: number,
): {
  readonly events: readonly unknown[];
  readonly nextBatch?: string;
  readonly done: boolean;
  readonly truncated: boolean;
} {
  if (
    !isRecord(body) ||
    !Array.isArray(body.events) ||
    body.events.length > MAX_DEHYDRATED_DEVICE_EVENTS_PAGE
  ) {
    throw new DehydrationError("BAD_RESPONSE", "an events page has at most a bounded events array");
  }
  if (body.next_batch !== undefined && typeof body.next_batch !== "string") {
    throw new DehydrationError("BAD_RESPONSE", "next_batch is a string");
  }
  const room = Math.max(0, MAX_DEHYDRATED_DEVICE_EVENTS - received);
  const events = body.events.slice(0, room);
  const nextBatch = body.next_batch;
  const capped = received + events.length >= MAX_DEHYDRATED_DEVICE_EVENTS;
  const truncated =
    capped && (body.events.length > events.length || (events.length > 0 && nextBatch !== undefined));
  const done = events.length === 0 || nextBatch === undefined || capped;
  return { events, ...(nextBatch === undefined ? {} : { nextBatch }), done, truncated };
}
