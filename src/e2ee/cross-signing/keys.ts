/**
 * Cross-signing public keys as `/keys/query` and `/keys/device_signing/upload` carry them (spec
 * "Cross-signing"): `{ user_id, usage, keys: { "ed25519:<pub>": <pub> }, signatures }`. Each key
 * is checked before we believe it: right owner, right usage, exactly one Ed25519 key, and, for
 * the self-signing and user-signing keys, a valid signature by the owner's master key.
 */
import { decodeBase64 } from "../../crypto/primitives/index.ts";
import { isRecord, storableWithin } from "../../wire/json.ts";
import { isId, MAX_KEYS_JSON_DEPTH } from "../limits.ts";
import { hasValidSignature } from "../signing.ts";

export type CrossSigningUsage = "master" | "self_signing" | "user_signing";

/**
 * Signatures accepted on one cross-signing key, all signers together: a master key collects a
 * signature from each device and each verifier, but a hostile server must not make us store an
 * unbounded list.
 */
export const MAX_CROSS_SIGNING_KEY_SIGNATURES = 256;
/** Bytes of a cross-signing key object as JSON: well above any honest key, far below memory trouble. */
export const MAX_CROSS_SIGNING_KEY_JSON_LENGTH = 64 * 1024;

/** A JSON object as it travelled (kept whole: signatures cover every field). */
export type KeyJson = Record<string, unknown>;

/** A checked cross-signing key. */
export interface CrossSigningKey {
  readonly userId: string;
  readonly usage: CrossSigningUsage;
  /** The Ed25519 public key, unpadded base64 (also its key ID after `ed25519:`). */
  readonly publicKey: string;
  /** The object as received, for signature checks and re-publication. */
  readonly json: KeyJson;
}

export type CrossSigningKeyProblem =
  | "MALFORMED"
  | "TOO_LARGE"
  | "USER_ID_MISMATCH"
  | "WRONG_USAGE"
  | "BAD_KEY"
  | "NOT_SIGNED_BY_MASTER";

function isEd25519Key(value: unknown): value is string {
  if (typeof value !== "string" || value.length !== 43) return false;
  try {
    return decodeBase64(value).length === 32;
  } catch {
    return false;
  }
}

function signatureCount(signatures: unknown): number | undefined {
  if (signatures === undefined) return 0;
  if (!isRecord(signatures)) return undefined;
  let n = 0;
  for (const perEntity of Object.values(signatures)) {
    if (!isRecord(perEntity)) return undefined;
    for (const sig of Object.values(perEntity)) {
      if (typeof sig !== "string") return undefined;
      n++;
    }
  }
  return n;
}

/**
 * Checks one cross-signing key object. `master` must be given for the self-signing and
 * user-signing keys: they count only when the master key signed them.
 */
export function checkCrossSigningKey(
  raw: unknown,
  userId: string,
  usage: CrossSigningUsage,
  master?: CrossSigningKey,
): CrossSigningKey | CrossSigningKeyProblem {
  if (!isRecord(raw) || !storableWithin(raw, MAX_KEYS_JSON_DEPTH)) return "MALFORMED";
  let size: number;
  try {
    size = JSON.stringify(raw).length;
  } catch {
    return "MALFORMED";
  }
  if (size > MAX_CROSS_SIGNING_KEY_JSON_LENGTH) return "TOO_LARGE";
  const count = signatureCount(raw.signatures);
  if (count === undefined) return "MALFORMED";
  if (count > MAX_CROSS_SIGNING_KEY_SIGNATURES) return "TOO_LARGE";
  if (!isId(raw.user_id)) return "MALFORMED";
  if (raw.user_id !== userId) return "USER_ID_MISMATCH";
  const usages = raw.usage;
  if (!Array.isArray(usages) || !usages.every((u) => typeof u === "string")) return "MALFORMED";
  if (!usages.includes(usage)) return "WRONG_USAGE";
  const keys = raw.keys;
  if (!isRecord(keys)) return "MALFORMED";
  const entries = Object.entries(keys);
  const only = entries[0];
  if (entries.length !== 1 || only === undefined) return "BAD_KEY";
  const [keyId, publicKey] = only;
  if (!isEd25519Key(publicKey) || keyId !== `ed25519:${publicKey}`) return "BAD_KEY";
  if (usage !== "master") {
    if (master === undefined) return "NOT_SIGNED_BY_MASTER";
    if (!hasValidSignature(raw, userId, `ed25519:${master.publicKey}`, master.publicKey)) {
      return "NOT_SIGNED_BY_MASTER";
    }
  }
  return { userId, usage, publicKey, json: raw };
}

/** A user's checked cross-signing keys; the sub-keys are present only when validly signed. */
export interface CrossSigningKeys {
  readonly master: CrossSigningKey;
  readonly selfSigning: CrossSigningKey | undefined;
  readonly userSigning: CrossSigningKey | undefined;
}

/**
 * A user's keys from the three maps of a `/keys/query` answer, or a problem with the master key
 * (then the user has no usable cross-signing identity in this answer). A bad sub-key is dropped,
 * not fatal: the master key alone still pins the identity.
 */
export function checkUserKeys(
  userId: string,
  master: unknown,
  selfSigning: unknown,
  userSigning: unknown,
): CrossSigningKeys | CrossSigningKeyProblem {
  const m = checkCrossSigningKey(master, userId, "master");
  if (typeof m === "string") return m;
  const s =
    selfSigning === undefined ? undefined : checkCrossSigningKey(selfSigning, userId, "self_signing", m);
  const u =
    userSigning === undefined ? undefined : checkCrossSigningKey(userSigning, userId, "user_signing", m);
  return {
    master: m,
    selfSigning: typeof s === "object" ? s : undefined,
    userSigning: typeof u === "object" ? u : undefined,
  };
}

/** Whether `signer` (a self-signing or user-signing key of `signerUserId`) signed `obj`. */
export function isSignedBy(obj: unknown, signerUserId: string, signer: CrossSigningKey | undefined): boolean {
  if (signer === undefined) return false;
  return hasValidSignature(obj, signerUserId, `ed25519:${signer.publicKey}`, signer.publicKey);
}
