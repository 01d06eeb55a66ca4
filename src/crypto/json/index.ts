export {
  CanonicalJsonError,
  type CanonicalJsonErrorCode,
  canonicalJson,
  compareCodePoints,
  type JsonObject,
  type JsonValue,
  MAX_CANONICAL_JSON_DEPTH,
} from "./canonical.ts";
export {
  type Signatures,
  SignedJsonError,
  type SignedJsonErrorCode,
  signingBytes,
  signJson,
  verifySignedJson,
} from "./signed.ts";
