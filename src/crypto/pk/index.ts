export { PK_MAC_LENGTH } from "./cipher.ts";
export { PkError, type PkErrorCode } from "./errors.ts";
export { PkDecryption, type PkDecryptionPickle } from "./pk-decryption.ts";
export { PkEncryption, type PkMessage } from "./pk-encryption.ts";
