export { CrossSigningError, type CrossSigningErrorCode } from "./errors.ts";
export type { IdentityState, UserIdentityInfo } from "./identity.ts";
export {
  type CrossSigningKey,
  type CrossSigningKeyProblem,
  type CrossSigningKeys,
  type CrossSigningUsage,
  checkCrossSigningKey,
  checkUserKeys,
  MAX_CROSS_SIGNING_KEY_JSON_LENGTH,
  MAX_CROSS_SIGNING_KEY_SIGNATURES,
} from "./keys.ts";
export type { CrossSigningStatus, DeviceCrossSigningTrust } from "./manager.ts";
