/**
 * A keys upload the server refuses because it already holds other keys under the IDs of ours
 * (Synapse: 400 `M_UNKNOWN` "One time key signed_curve25519:AAAAAQ already exists. Old key: …;
 * new key: …"). It happens when this device's store is restored from an older copy (a backup of
 * the store file, a VM snapshot): the account's key-ID counter restarts from where that copy left
 * it, while the server still holds keys the later copy made under the next IDs. Sending the same
 * body again is refused again, forever, and no one-time key is published any more, so the machine
 * replaces the refused keys with new ones numbered well past the old counter and uploads again,
 * a bounded number of times in a row.
 */
import { MAX_ONE_TIME_KEYS } from "../../crypto/olm/index.ts";
import type { KeysUploadRequest } from "../requests.ts";

/**
 * An error answer to a request the machine made: its HTTP status and its JSON body as received
 * (anything: the server's word, checked before use).
 */
export interface RequestFailure {
  readonly status: number;
  readonly body?: unknown;
}

/**
 * What `markRequestAsFailed` did: `"rebuilt"`, the request was replaced (send `outgoingRequests()`
 * again now); `"unchanged"`, nothing (the request goes out again as it is, as after any failure).
 */
export type RequestFailureOutcome = "rebuilt" | "unchanged";

/**
 * Uploads with new keys after a refusal, in a row (no upload accepted in between), before the
 * machine gives up (`E2eeError("KEY_UPLOAD_CONFLICT")`) and holds the upload back for
 * `KEY_UPLOAD_CONFLICT_BACKOFF_MS`.
 */
export const MAX_KEY_UPLOAD_CONFLICTS = 5;

/** How long the keys upload is held back after the server refused `MAX_KEY_UPLOAD_CONFLICTS` new ones. */
export const KEY_UPLOAD_CONFLICT_BACKOFF_MS = 60 * 60 * 1000;

/**
 * Key IDs skipped after a refusal: as many as an account keeps one-time keys (5 000). The keys the
 * later copy left on the server are its newest (servers hand out the oldest first), about the 50 it
 * keeps there, so the new IDs clear them unless that copy made thousands since; if it did, the
 * next refusal skips again. IDs are a 32-bit counter: this costs nothing that matters.
 */
export const KEY_ID_SKIP_ON_CONFLICT = MAX_ONE_TIME_KEYS;

/** Characters of the server's `error` text searched for the key ID (the ID comes first in it). */
const ERROR_TEXT_SCANNED = 512;
/** Error codes servers give this refusal: Synapse `M_UNKNOWN`, others `M_INVALID_PARAM`. */
const CONFLICT_ERRCODES: ReadonlySet<string> = new Set(["M_UNKNOWN", "M_INVALID_PARAM"]);
/** "One time key <algorithm>:<id> already exists" (the ID may be bare or quoted). */
const ALREADY_EXISTS = /one[ -]time key ['"]?([^\s'"]{1,255}?)['"]? already exists/i;
const ALGORITHM = "signed_curve25519";

/**
 * The key of `body` that `failure` says the server already holds under another key: undefined
 * unless the failure is a 400 with such an error naming a one-time or fallback key ID that `body`
 * carries. Nothing else is taken from the failure.
 */
export function refusedKey(
  failure: RequestFailure,
  body: KeysUploadRequest["body"],
): { readonly keyId: string; readonly fallback: boolean } | undefined {
  if (failure.status !== 400) return undefined;
  const error = failure.body;
  if (typeof error !== "object" || error === null || Array.isArray(error)) return undefined;
  const { errcode, error: text } = error as Record<string, unknown>;
  if (typeof errcode !== "string" || !CONFLICT_ERRCODES.has(errcode) || typeof text !== "string") {
    return undefined;
  }
  const named = ALREADY_EXISTS.exec(text.slice(0, ERROR_TEXT_SCANNED))?.[1];
  if (named === undefined) return undefined;
  const keyId = named.includes(":") ? named : `${ALGORITHM}:${named}`;
  if (body.one_time_keys !== undefined && Object.hasOwn(body.one_time_keys, keyId)) {
    return { keyId, fallback: false };
  }
  if (body.fallback_keys !== undefined && Object.hasOwn(body.fallback_keys, keyId)) {
    return { keyId, fallback: true };
  }
  return undefined;
}

/** Refusals in a row, and the hold-back once they reach the bound (memory only: a restart starts over). */
export class UploadConflicts {
  #inARow = 0;
  #heldUntil: number | undefined;

  /** Whether the keys upload may go out at `now`. */
  allows(now: number): boolean {
    if (this.#heldUntil === undefined) return true;
    if (now < this.#heldUntil) return false;
    this.#heldUntil = undefined;
    return true;
  }

  /**
   * Another refusal: true to replace the keys and upload again, false once the bound is passed
   * (the upload is held back from `now` for `KEY_UPLOAD_CONFLICT_BACKOFF_MS`, then tried again).
   */
  refused(now: number): boolean {
    this.#inARow++;
    if (this.#inARow <= MAX_KEY_UPLOAD_CONFLICTS) return true;
    this.#inARow = 0;
    this.#heldUntil = now + KEY_UPLOAD_CONFLICT_BACKOFF_MS;
    return false;
  }

  /** An upload was accepted. */
  succeeded(): void {
    this.#inARow = 0;
  }
}
