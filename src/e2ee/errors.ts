/**
 * Errors of the E2EE state machine. Each operation family has one class with a `code` from a
 * string-literal union; messages never carry keys, plaintext or tokens.
 */

export type E2eeErrorCode =
  /** `markRequestAsSent` named a request the machine does not have in flight. */
  | "UNKNOWN_REQUEST"
  /** An HTTP response body does not have the shape the spec gives it. */
  | "BAD_RESPONSE"
  /** A caller-supplied argument is malformed (e.g. an empty user ID). */
  | "BAD_ARGUMENT"
  /** The store holds state for a different user or device. */
  | "STORE_MISMATCH"
  /** A persisted record could not be read back. */
  | "BAD_STORE_RECORD"
  /**
   * `encryptRoomEvent` was called before the room key was shared, or after it reached its
   * rotation period (call `shareRoomKey` first).
   */
  | "ROOM_KEY_NOT_SHARED"
  /** The room's algorithm would change from what we recorded (a server cannot switch encryption off or down). */
  | "ENCRYPTION_DOWNGRADE"
  /** The room asks for an encryption algorithm we do not support. */
  | "UNSUPPORTED_ALGORITHM"
  /**
   * The server kept refusing our keys upload, each time for a key ID it holds another key under
   * (`markRequestAsFailed`): the upload is held back for `KEY_UPLOAD_CONFLICT_BACKOFF_MS`.
   */
  | "KEY_UPLOAD_CONFLICT"
  /** The machine was closed. */
  | "CLOSED";

export class E2eeError extends Error {
  override readonly name = "E2eeError";
  readonly code: E2eeErrorCode;

  constructor(code: E2eeErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A device that has not been marked verified, blacklisted or ignored. */
export interface UnknownDevice {
  readonly userId: string;
  readonly deviceId: string;
  readonly ed25519: string;
}

/**
 * Thrown by `shareRoomKey` under `verifyDevices` when recipients include devices whose trust is
 * unset: the caller marks each one verified, blacklisted or ignored, then shares again.
 */
export class UnknownDevicesError extends Error {
  override readonly name = "UnknownDevicesError";
  readonly code = "UNKNOWN_DEVICES" as const;
  readonly devices: readonly UnknownDevice[];

  constructor(devices: readonly UnknownDevice[]) {
    super(`${devices.length} unseen device(s) in the room: mark each verified, blacklisted or ignored`);
    this.devices = devices;
  }
}

/**
 * Thrown by `shareRoomKey` (and so by a send) under `errorOnVerifiedUserProblems` when a user we
 * verified is in the room with a problem: their identity changed since (a verification violation:
 * `changedIdentity`), or they have a device their identity did not sign whose trust is unset
 * (`unsignedDevices`, ours included). No key went to anyone. The app withdraws the verification or
 * accepts the new identity (`withdrawVerification`, `acceptIdentityChange`), or marks each device
 * verified, ignored or blacklisted, then shares again.
 */
export class VerifiedUserProblemError extends Error {
  override readonly name = "VerifiedUserProblemError";
  readonly code = "VERIFIED_USER_PROBLEM" as const;
  /** Users we verified whose current identity is not the one verified. */
  readonly changedIdentity: readonly string[];
  /** Devices of verified users (not of those above) that their identity did not sign. */
  readonly unsignedDevices: readonly UnknownDevice[];

  constructor(changedIdentity: readonly string[], unsignedDevices: readonly UnknownDevice[]) {
    super(
      `verified users with problems in the room: ${changedIdentity.length} changed identity, ` +
        `${unsignedDevices.length} unsigned device(s); withdraw or accept, or mark each device`,
    );
    this.changedIdentity = changedIdentity;
    this.unsignedDevices = unsignedDevices;
  }
}

/** Why a room event could not be decrypted (now). */
export type DecryptionFailureCode =
  /** The event is not a well-formed `m.megolm.v1.aes-sha2` event. */
  | "MALFORMED_EVENT"
  /** The ciphertext is larger than any event can be (`MAX_ROOM_EVENT_CIPHERTEXT_BYTES`). */
  | "TOO_LARGE"
  /** The algorithm is not one we support. */
  | "UNSUPPORTED_ALGORITHM"
  /** We hold no inbound session with this ID for this room (the key may still arrive). */
  | "UNKNOWN_SESSION"
  /** The sender told us they will not share the key (`m.room_key.withheld`). */
  | "WITHHELD"
  /** We hold the session, but only from a later index than the message's. */
  | "UNKNOWN_INDEX"
  /** The ciphertext failed its MAC or its signature. */
  | "BAD_SIGNATURE"
  /** The ciphertext decrypted to something that is not a valid payload. */
  | "BAD_PAYLOAD"
  /** The payload's `room_id` is not the room the event arrived in. */
  | "ROOM_MISMATCH"
  /** This message index was already decrypted for a different event ID. */
  | "REPLAYED"
  /** The session belongs to a device of a different user than the event's sender. */
  | "MISMATCHED_SENDER"
  /** The sending device is not cross-signed by its owner, and the room or client refuses such events. */
  | "SENDER_NOT_CROSS_SIGNED";

export class DecryptionError extends Error {
  override readonly name = "DecryptionError";
  readonly code: DecryptionFailureCode;
  /** For `WITHHELD`: the spec code the sender gave (e.g. `m.blacklisted`). */
  readonly withheldCode: string | undefined;

  constructor(code: DecryptionFailureCode, message: string, withheldCode?: string) {
    super(message);
    this.code = code;
    this.withheldCode = withheldCode;
  }
}

/** Failure codes that may clear up once a key arrives: such events go to the pending registry. */
export const RETRYABLE_FAILURES: ReadonlySet<DecryptionFailureCode> = new Set([
  "UNKNOWN_SESSION",
  "WITHHELD",
  "UNKNOWN_INDEX",
]);

/** Why an Olm-encrypted to-device event was dropped. */
export type ToDeviceFailureCode =
  /** The content is not a well-formed `m.olm.v1.curve25519-aes-sha2` event. */
  | "MALFORMED_EVENT"
  /** The ciphertext is larger than a to-device message can be (`MAX_TO_DEVICE_CIPHERTEXT_BYTES`). */
  | "TOO_LARGE"
  /** The algorithm is not one we support. */
  | "UNSUPPORTED_ALGORITHM"
  /** The ciphertext has no entry for our Curve25519 key. */
  | "NOT_FOR_US"
  /** No session decrypts it and it cannot start a new one (a wedged session: we ask for a new one). */
  | "NO_SESSION"
  /** The plaintext is not a valid Olm payload (not UTF-8, not JSON, or the wrong shape). */
  | "BAD_PAYLOAD"
  /**
   * An Olm message already decrypted once: delivered again (a sync from a position the client did
   * not save) or replayed, a pre-key message perhaps after its session was pruned. Ignored; the
   * session that sent it is not taken for wedged.
   */
  | "REPLAYED"
  /** The payload's `sender` is not the event's sender, or the device belongs to someone else. */
  | "SENDER_MISMATCH"
  /** The payload's `recipient` / `recipient_keys` are not us. */
  | "RECIPIENT_MISMATCH"
  /** The payload's `keys.ed25519` is not the Ed25519 key of the device that owns the sender key. */
  | "KEYS_MISMATCH"
  /** Sent by a device marked dehydrated (MSC3814), which sends nothing: dropped. */
  | "FROM_DEHYDRATED_DEVICE";
