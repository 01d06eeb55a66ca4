// A transaction from the homeserver, checked at the edge and normalised: stable or unstable field
// names (MSC2409/MSC4203, MSC3202, both spellings of the key counts) become one typed record; the
// unprefixed name wins when both are present.
import {
  type AppserviceEphemeral,
  type AppserviceToDevice,
  TXN_DEVICE_LISTS,
  TXN_DEVICE_LISTS_STABLE,
  TXN_EPHEMERAL,
  TXN_EPHEMERAL_UNSTABLE,
  TXN_FALLBACK_KEYS,
  TXN_FALLBACK_KEYS_STABLE,
  TXN_OTK_COUNTS,
  TXN_OTK_COUNTS_ALT,
  TXN_OTK_COUNTS_STABLE,
  TXN_TO_DEVICE,
  TXN_TO_DEVICE_STABLE,
  transactionSchema,
} from "../wire/appservice.ts";
import type { ClientEvent } from "../wire/index.ts";
import { AppserviceError } from "./errors.ts";

/** Longest transaction ID accepted (it is kept in memory for deduplication). */
export const MAX_TXN_ID_LENGTH = 255;

export interface Transaction {
  events: ClientEvent[];
  ephemeral: AppserviceEphemeral[];
  toDevice: AppserviceToDevice[];
  /** MSC3202; absent when the homeserver sent none. */
  deviceLists: { changed: string[]; left: string[] } | undefined;
  /** MSC3202, by user then device; devices left out are unchanged since the last transaction. */
  oneTimeKeyCounts: Record<string, Record<string, Record<string, number>>>;
  unusedFallbackKeyTypes: Record<string, Record<string, string[]>>;
}

/** Checks a transaction ID from the URL: bounded, no control characters (it is remembered). */
export function checkTxnId(txnId: string): void {
  if (txnId.length === 0 || txnId.length > MAX_TXN_ID_LENGTH || !/^[^\p{Cc}\p{Cs}]+$/u.test(txnId)) {
    throw new AppserviceError("BAD_TRANSACTION", "invalid transaction ID");
  }
}

/** Parses a transaction body (already JSON-decoded). Throws `AppserviceError("BAD_TRANSACTION")`. */
export function parseTransaction(raw: unknown): Transaction {
  const parsed = transactionSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new AppserviceError(
      "BAD_TRANSACTION",
      `not a transaction: ${first ? `${first.path.join(".") || "(root)"}: ${first.message}` : "bad shape"}`,
    );
  }
  const t = parsed.data;
  const lists = t[TXN_DEVICE_LISTS_STABLE] ?? t[TXN_DEVICE_LISTS];
  return {
    events: t.events,
    ephemeral: t[TXN_EPHEMERAL] ?? t[TXN_EPHEMERAL_UNSTABLE] ?? [],
    toDevice: t[TXN_TO_DEVICE_STABLE] ?? t[TXN_TO_DEVICE] ?? [],
    deviceLists: lists ? { changed: lists.changed ?? [], left: lists.left ?? [] } : undefined,
    oneTimeKeyCounts: t[TXN_OTK_COUNTS_STABLE] ?? t[TXN_OTK_COUNTS] ?? t[TXN_OTK_COUNTS_ALT] ?? {},
    unusedFallbackKeyTypes: t[TXN_FALLBACK_KEYS_STABLE] ?? t[TXN_FALLBACK_KEYS] ?? {},
  };
}
