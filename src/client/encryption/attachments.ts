// Encrypted attachments (v2) for the client: what to upload for a file in an encrypted room, and
// turning a received `file` object back into the plaintext bytes. The cipher code is loaded on
// first use (a dynamic import: a chunk of its own in a browser bundle), when a file is sent or
// downloaded; checking a `file` object (`attachmentOf`) needs only file-info.ts.
import {
  decodeFileInfo,
  type EncryptedFile,
  type EncryptedFileInfo,
  isEncryptedFile,
} from "../../crypto/attachments/file-info.ts";
import { type JsonObject, parseMxcUri } from "../../wire/index.ts";
import type { UploadData } from "../media.ts";
import { ClientCryptoError } from "./errors.ts";

export interface EncryptedUpload {
  /** The ciphertext to upload (as `application/octet-stream`: the real type goes in the event). */
  readonly data: Uint8Array | ReadableStream<Uint8Array>;
  /** Byte length, when known before uploading (CTR keeps the plaintext's length). */
  readonly size: number | undefined;
  /** The key, IV and hash; for a stream, known once the upload consumed it. */
  readonly info: Promise<EncryptedFileInfo>;
  /**
   * Whether `info` is settled. Once the upload was answered it must be: a server answers a stream
   * only after reading it whole (a `size`d one: all `size` bytes), and never otherwise.
   */
  readonly settled: () => boolean;
}

/**
 * The attachment cipher, whole and streamed (also history sharing's bundles), loaded on first use:
 * one chunk, not two (each chunk a bundler makes costs its own compression and glue).
 */
export const attachmentCipher = () => import("../../crypto/attachments/index.ts");

/** Encrypts a file for upload; streams stay streams (encrypted chunk by chunk). */
export async function encryptUpload(data: UploadData, size?: number): Promise<EncryptedUpload> {
  if (data instanceof ReadableStream) {
    const { ciphertext, info } = (await attachmentCipher()).encryptAttachmentStream(data, size);
    let settled = false;
    const done = () => {
      settled = true;
    };
    info.then(done, done);
    return { data: ciphertext, size, info, settled: () => settled };
  }
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(await data.arrayBuffer());
  const { ciphertext, info } = await (await attachmentCipher()).encryptAttachmentAsync(bytes);
  return { data: ciphertext, size: ciphertext.byteLength, info: Promise.resolve(info), settled: () => true };
}

/** The attachment a media event (`m.image`, `m.file`, `m.audio`, `m.video`) carries. */
export type MediaAttachment =
  | {
      readonly encrypted: true;
      /** The `mxc://` URI of the ciphertext. */
      readonly url: string;
      /** The validated `EncryptedFile` (v2): key, IV and hash to decrypt and check the download. */
      readonly file: EncryptedFile;
      readonly mimetype: string | undefined;
      readonly size: number | undefined;
    }
  | {
      readonly encrypted: false;
      readonly url: string;
      readonly mimetype: string | undefined;
      readonly size: number | undefined;
    };

/**
 * The attachment of a media event's content, checked: an encrypted `file` (only a well-formed v2
 * `EncryptedFile` with an `mxc://` URL) or a plain `url`. Undefined when the content has neither,
 * or only a malformed one. Pass the content to `MatrixClient.downloadAttachment` to fetch it.
 */
export function attachmentOf(content: JsonObject): MediaAttachment | undefined {
  const info = isObject(content.info) ? content.info : {};
  return checkedAttachment(content.file, content.url, info);
}

/**
 * The thumbnail a media event's content carries in its `info`, checked as `attachmentOf` checks
 * the file: an encrypted `thumbnail_file` (well-formed v2 `EncryptedFile`, `mxc://` URL) or a plain
 * `thumbnail_url`, typed by `thumbnail_info`. Undefined when there is neither, or only a malformed
 * one (a malformed `thumbnail_file` is never passed over for a `thumbnail_url` beside it). A plain
 * thumbnail in an encrypted room's event is possible: its sender uploaded it unencrypted (`encrypted`
 * says so). Pass the content to `MatrixClient.downloadAttachmentThumbnail` to fetch it.
 */
export function thumbnailOf(content: JsonObject): MediaAttachment | undefined {
  const info = isObject(content.info) ? content.info : {};
  const thumbInfo = isObject(info.thumbnail_info) ? info.thumbnail_info : {};
  return checkedAttachment(info.thumbnail_file, info.thumbnail_url, thumbInfo);
}

function checkedAttachment(
  file: unknown,
  url: unknown,
  info: Record<string, unknown>,
): MediaAttachment | undefined {
  const mimetype = typeof info.mimetype === "string" ? info.mimetype : undefined;
  const size =
    typeof info.size === "number" && Number.isSafeInteger(info.size) && info.size >= 0
      ? info.size
      : undefined;
  if (file !== undefined) {
    if (!isEncryptedFile(file) || !isMxc(file.url)) return undefined;
    return { encrypted: true, url: file.url, file, mimetype, size };
  }
  if (isMxc(url)) return { encrypted: false, url, mimetype, size };
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
/** A content URI as the spec allows it (as downloads require): never a path beyond `/{server}/{mediaId}`. */
const isMxc = (v: unknown): v is string => typeof v === "string" && parseMxcUri(v) !== undefined;

/** The `file` object of an encrypted media event. */
export function encryptedFile(info: EncryptedFileInfo, url: string): EncryptedFile {
  return { ...info, url };
}

/**
 * The `url` of a media event's `file`, once the file checked out (as in `attachmentOf`): a malformed
 * or unsupported `file` throws `AttachmentError` `BAD_FILE_INFO` before anything is downloaded, and
 * is never passed over for a plain `url` beside it.
 */
function checkedFileUrl(file: unknown): string {
  decodeFileInfo(file).key.fill(0);
  const url = (file as Record<string, unknown>).url;
  if (typeof url !== "string") throw new ClientCryptoError("NO_ATTACHMENT", "the file object has no url");
  return url;
}

/**
 * The bytes of a media event's attachment: `content.file` (encrypted: hash checked, then
 * decrypted) or `content.url` (plain). Throws `AttachmentError` for a bad `file` or a hash mismatch.
 */
export function downloadAttachmentBytes(
  content: JsonObject,
  download: (mxcUri: string) => Promise<Uint8Array>,
): Promise<Uint8Array> {
  return storedBytes(content.file, content.url, "file or url", download);
}

/**
 * The bytes of the thumbnail a media event stores (see `thumbnailOf`): `info.thumbnail_file`
 * (encrypted: hash checked, then decrypted) or `info.thumbnail_url` (plain, as its sender uploaded
 * it). `NO_ATTACHMENT` when the event has neither; `AttachmentError` as for the file.
 */
export function downloadThumbnailBytes(
  content: JsonObject,
  download: (mxcUri: string) => Promise<Uint8Array>,
): Promise<Uint8Array> {
  const info = isObject(content.info) ? content.info : {};
  return storedBytes(info.thumbnail_file, info.thumbnail_url, "thumbnail_file or thumbnail_url", download);
}

async function storedBytes(
  file: unknown,
  url: unknown,
  fields: string,
  download: (mxcUri: string) => Promise<Uint8Array>,
): Promise<Uint8Array> {
  if (file !== undefined) {
    const fileUrl = checkedFileUrl(file);
    const { decryptAttachmentAsync } = await attachmentCipher();
    return decryptAttachmentAsync(await download(fileUrl), file);
  }
  if (typeof url === "string") return download(url);
  throw new ClientCryptoError("NO_ATTACHMENT", `the content has no ${fields} to download`);
}

/**
 * Like `downloadAttachmentBytes`, as a stream (big files). For an encrypted `file` the hash can
 * only be checked at the end: the stream then errors with `AttachmentError("HASH_MISMATCH")`, so
 * do not act on the bytes before the stream ended cleanly.
 */
export async function downloadAttachmentStream(
  content: JsonObject,
  download: (mxcUri: string) => Promise<ReadableStream<Uint8Array>>,
): Promise<ReadableStream<Uint8Array>> {
  const file = content.file;
  if (file !== undefined) {
    const url = checkedFileUrl(file);
    const { decryptAttachmentStream } = await attachmentCipher();
    const pipe = new TransformStream<Uint8Array, Uint8Array>();
    const plaintext = decryptAttachmentStream(pipe.readable, file);
    let ciphertext: ReadableStream<Uint8Array>;
    try {
      ciphertext = await download(url);
    } catch (e) {
      // Nobody will read `plaintext`: cancelling it wipes the key it holds.
      await plaintext.cancel(e).catch(() => undefined);
      throw e;
    }
    // Errors of the download reach the reader through `plaintext`.
    ciphertext.pipeTo(pipe.writable).catch(() => undefined);
    return plaintext;
  }
  if (typeof content.url === "string") return download(content.url);
  throw new ClientCryptoError("NO_ATTACHMENT", "the content has no file or url to download");
}
