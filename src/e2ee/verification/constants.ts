/**
 * The verification framework's names, cancel codes, timeouts and bounds (client-server API,
 * "Key verification framework", "SAS", "QR codes"). Every limit an attacker can push on is here.
 */

export const METHOD_SAS = "m.sas.v1";
export const METHOD_QR_SHOW = "m.qr_code.show.v1";
export const METHOD_QR_SCAN = "m.qr_code.scan.v1";
export const METHOD_RECIPROCATE = "m.reciprocate.v1";

export const KEY_AGREEMENT = "curve25519-hkdf-sha256";
export const HASH = "sha256";
/** MAC methods we accept, most preferred first (MSC3783's unstable name is the v2 MAC). */
export const MAC_V2 = "hkdf-hmac-sha256.v2";
export const MAC_V2_UNSTABLE = "org.matrix.msc3783.hkdf-hmac-sha256";
export const MAC_LEGACY = "hkdf-hmac-sha256";
export const SAS_MAC_PREFERENCE: readonly string[] = [MAC_V2, MAC_V2_UNSTABLE, MAC_LEGACY];
export const SAS_METHODS: readonly string[] = ["decimal", "emoji"];

export const EVENT_REQUEST = "m.key.verification.request";
export const EVENT_READY = "m.key.verification.ready";
export const EVENT_START = "m.key.verification.start";
export const EVENT_ACCEPT = "m.key.verification.accept";
export const EVENT_KEY = "m.key.verification.key";
export const EVENT_MAC = "m.key.verification.mac";
export const EVENT_DONE = "m.key.verification.done";
export const EVENT_CANCEL = "m.key.verification.cancel";
export const VERIFICATION_EVENT_TYPES: ReadonlySet<string> = new Set([
  EVENT_REQUEST,
  EVENT_READY,
  EVENT_START,
  EVENT_ACCEPT,
  EVENT_KEY,
  EVENT_MAC,
  EVENT_DONE,
  EVENT_CANCEL,
]);

/** The spec's cancel codes. */
export type CancelCode =
  | "m.user"
  | "m.timeout"
  | "m.unknown_transaction"
  | "m.unknown_method"
  | "m.unexpected_message"
  | "m.key_mismatch"
  | "m.user_mismatch"
  | "m.invalid_message"
  | "m.accepted"
  | "m.mismatched_commitment"
  | "m.mismatched_sas";

/** A request (and a whole flow) expires this long after it was made. */
export const VERIFICATION_TIMEOUT_MS = 10 * 60_000;
/** Requests stamped further in the past than this are ignored. */
export const MAX_REQUEST_AGE_MS = 10 * 60_000;
/** Requests stamped further in the future than this are ignored. */
export const MAX_REQUEST_SKEW_MS = 5 * 60_000;
/** A SAS exchange may take this long from its start... */
export const SAS_TIMEOUT_MS = 5 * 60_000;
/** ... and this long between two of its events. */
export const SAS_EVENT_TIMEOUT_MS = 60_000;
/** A finished or cancelled flow is remembered this long, so late events are not taken for new flows. */
export const FINISHED_FLOW_RETENTION_MS = 10 * 60_000;

/** Flows held at once (finished ones are dropped first when full; new incoming ones are ignored then). */
export const MAX_VERIFICATION_FLOWS = 64;
/**
 * To-device messages of flows waiting to be sent (held until `/sendToDevice` takes them). Anyone
 * can open flows, and each that times out queues an `m.timeout` cancel: past this, messages of
 * cancelled flows (or forgotten ones) are dropped first, oldest first, then the oldest of all.
 */
export const MAX_BRIDGE_REQUESTS = 256;
/** Flows held at once with one other user. */
export const MAX_FLOWS_PER_USER = 8;
/** Entries in `methods`, the SAS option lists and a MAC's `mac` map. */
export const MAX_LIST_ENTRIES = 16;
/** Bytes of a QR code's shared secret we generate (the spec asks for at least 8). */
export const QR_SECRET_LENGTH = 16;
export const MIN_QR_SECRET_LENGTH = 8;
/** Longest QR payload we decode (header + a maximal flow ID + keys + a generous secret). */
export const MAX_QR_CODE_LENGTH = 1024;
/** Free text in a cancel's `reason` we keep. */
export const MAX_CANCEL_REASON_LENGTH = 256;
