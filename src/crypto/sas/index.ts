export { SAS_EMOJI, type SasEmoji } from "./emoji.ts";
export { SasError, type SasErrorCode } from "./errors.ts";
export { SAS_MAC_METHODS, Sas, type SasMacMethod } from "./sas.ts";
export { SAS_BYTES_LENGTH, sasDecimals, sasEmoji, sasEmojiIndexes } from "./short-auth-string.ts";
