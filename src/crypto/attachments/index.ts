export {
  decryptAttachment,
  decryptAttachmentAsync,
  type EncryptedAttachment,
  encryptAttachment,
  encryptAttachmentAsync,
} from "./attachment.ts";
export { AttachmentError, type AttachmentErrorCode } from "./errors.ts";
export {
  type AttachmentJwk,
  type EncryptedFile,
  type EncryptedFileInfo,
  isEncryptedFile,
} from "./file-info.ts";
export {
  AttachmentDecryptor,
  AttachmentEncryptor,
  decryptAttachmentStream,
  encryptAttachmentStream,
} from "./stream.ts";
