// Olm (the double ratchet between two devices), byte-compatible with libolm and vodozemac.
// Limits an attacker could push on are the exported MAX_* constants.
export {
  Account,
  type AccountPickle,
  type IdentityKeys,
  type InboundSessionResult,
} from "./account/account.ts";
// The dehydrated-device pickle (`toDehydratedDevice`, `fromDehydratedDevice`) is exported by
// `keyroom/crypto` (../index.ts), not here: the engine imports this barrel, and a bundler puts
// every file a barrel names in the engine's chunk, ChaCha20-Poly1305 with it.
export type { FallbackKeysPickle } from "./account/fallback-keys.ts";
export {
  MAX_ONE_TIME_KEYS,
  ONE_TIME_KEYS_TO_PUBLISH,
  type OneTimeKeyPickle,
} from "./account/one-time-keys.ts";
export { OlmError, type OlmErrorCode } from "./errors.ts";
export { MESSAGE_TYPE_NORMAL, MESSAGE_TYPE_PRE_KEY, type OlmMessage } from "./message/olm-message.ts";
export { type DoubleRatchetPickle, MAX_RECEIVER_CHAINS } from "./session/double-ratchet.ts";
export {
  MAX_MESSAGE_GAP,
  MAX_SKIPPED_MESSAGE_KEYS,
  type ReceiverChainPickle,
} from "./session/receiver-chain.ts";
export { Session, type SessionPickle } from "./session/session.ts";
