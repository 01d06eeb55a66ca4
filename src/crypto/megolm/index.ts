export { MegolmError, type MegolmErrorCode } from "./errors.ts";
export {
  InboundGroupSession,
  type InboundGroupSessionPickle,
  type MegolmDecryptResult,
  type SessionOrdering,
} from "./inbound.ts";
export { MEGOLM_MAC_LENGTH, MEGOLM_MESSAGE_VERSION } from "./message.ts";
export { OutboundGroupSession, type OutboundGroupSessionPickle } from "./outbound.ts";
export { MAX_MESSAGE_INDEX } from "./ratchet.ts";
export {
  EXPORTED_KEY_LENGTH,
  EXPORTED_KEY_VERSION,
  SESSION_KEY_LENGTH,
  SESSION_KEY_VERSION,
} from "./session-key.ts";
