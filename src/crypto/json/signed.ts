/**
 * Signed JSON (Matrix specification, appendices "Signing JSON" and "Checking for a Signature"):
 * the signature covers the canonical JSON of the object without its `signatures` and `unsigned`
 * members, and is stored as `signatures[entity][keyId]` in unpadded base64.
 */
import {
  CryptoPrimitiveError,
  decodeBase64,
  ED25519_PUBLIC_KEY_LENGTH,
  ed25519Verify,
  utf8Encode,
} from "../primitives/index.ts";
import { CanonicalJsonError, canonicalJson, type JsonObject, type JsonValue } from "./canonical.ts";

export type SignedJsonErrorCode =
  /** The value to sign is not a plain object, or its `signatures` member is malformed. */
  | "BAD_OBJECT"
  /** The signer returned something that is not a string. */
  | "BAD_SIGNATURE";

export class SignedJsonError extends Error {
  override readonly name = "SignedJsonError";
  readonly code: SignedJsonErrorCode;

  constructor(code: SignedJsonErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** `signatures` as the specification shapes it: entity (user ID or server name) → key ID → base64. */
export type Signatures = Record<string, Record<string, string>>;

const ED25519_PREFIX = "ed25519:";
const ED25519_SIGNATURE_BASE64_LENGTH = 86;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The bytes a signature covers: canonical JSON of `object` without `signatures` and `unsigned`. */
export function signingBytes(object: JsonObject | Record<string, unknown>): Uint8Array {
  if (!isPlainObject(object)) throw new SignedJsonError("BAD_OBJECT", "only plain objects can be signed");
  const { signatures: _signatures, unsigned: _unsigned, ...rest } = object;
  return utf8Encode(canonicalJson(rest));
}

/**
 * A copy of `object` with one more signature: `signatures[entity][keyId] = sign(bytes)`.
 * Existing signatures (other keys, other entities) and `unsigned` are kept; the input is not
 * modified. `sign` returns the unpadded base64 signature, e.g. an Olm account's `sign`.
 * Throws `CanonicalJsonError` if the object has no canonical form (floats, ...).
 */
export function signJson<T extends Record<string, unknown>>(
  object: T,
  entity: string,
  keyId: string,
  sign: (message: Uint8Array) => string,
): T & { signatures: Signatures } {
  const bytes = signingBytes(object);
  const existing = object.signatures;
  if (existing !== undefined && !isSignatures(existing)) {
    throw new SignedJsonError("BAD_OBJECT", "the object's signatures member is malformed");
  }
  const signature = sign(bytes);
  if (typeof signature !== "string")
    throw new SignedJsonError("BAD_SIGNATURE", "signer did not return a string");
  const signatures: Signatures = { ...(existing ?? {}) };
  signatures[entity] = { ...(signatures[entity] ?? {}), [keyId]: signature };
  return { ...object, signatures };
}

function isSignatures(value: unknown): value is Signatures {
  if (!isPlainObject(value)) return false;
  for (const perEntity of Object.values(value)) {
    if (!isPlainObject(perEntity)) return false;
    for (const sig of Object.values(perEntity)) if (typeof sig !== "string") return false;
  }
  return true;
}

/**
 * True when `object.signatures[entity][keyId]` is a valid Ed25519 signature by `publicKeyBase64`
 * over the object's signing bytes. `keyId` is the full identifier, e.g. "ed25519:DEVICEID".
 * Every malformed input (not an object, missing or non-string signature, bad base64, wrong
 * lengths, a non-Ed25519 key ID, content with no canonical form) gives false, never an exception:
 * whatever arrives from the network, the answer is simply "not signed".
 */
export function verifySignedJson(
  object: unknown,
  entity: string,
  keyId: string,
  publicKeyBase64: string,
): boolean {
  try {
    if (!isPlainObject(object) || typeof keyId !== "string" || !keyId.startsWith(ED25519_PREFIX))
      return false;
    const signatures = object.signatures;
    if (!isPlainObject(signatures)) return false;
    const perEntity = Object.hasOwn(signatures, entity) ? signatures[entity] : undefined;
    if (!isPlainObject(perEntity)) return false;
    const signature = Object.hasOwn(perEntity, keyId) ? perEntity[keyId] : undefined;
    if (typeof signature !== "string" || signature.length > ED25519_SIGNATURE_BASE64_LENGTH + 2) return false;
    if (typeof publicKeyBase64 !== "string") return false;
    const publicKey = decodeBase64(publicKeyBase64);
    if (publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) return false;
    return ed25519Verify(publicKey, signingBytes(object), decodeBase64(signature));
  } catch (e) {
    // Malformed base64 or content without a canonical form: not validly signed. Anything else is
    // a bug and must surface.
    if (
      e instanceof CanonicalJsonError ||
      e instanceof CryptoPrimitiveError ||
      e instanceof SignedJsonError
    ) {
      return false;
    }
    throw e;
  }
}

export type { JsonObject, JsonValue };
