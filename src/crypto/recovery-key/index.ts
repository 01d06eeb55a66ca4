export { RecoveryKeyError, type RecoveryKeyErrorCode } from "./errors.ts";
export {
  decodeRecoveryKey,
  encodeRecoveryKey,
  MAX_RECOVERY_KEY_INPUT_LENGTH,
  RECOVERY_KEY_GROUP_SIZE,
  RECOVERY_KEY_LENGTH,
  RECOVERY_KEY_PREFIX,
} from "./recovery-key.ts";
