/**
 * Streaming encryption and decryption of attachments, for files too big to hold in memory. The
 * AES-CTR keystream is computed at any byte offset, so chunks of any size work.
 *
 * A streamed decryption cannot check the ciphertext's hash before it has seen all of it: the plaintext
 * it yields is untrusted until the stream ends without an error (a mismatch errors the stream on its
 * last chunk). Callers that must not act on unverified data decrypt into a temporary place first.
 */
import {
  aes256Ctr,
  constantTimeEqual,
  createSha256,
  randomBytes,
  type Sha256Hasher,
  wipe,
} from "../primitives/symmetric.ts";
import { counterHalfBytes, fileInfoFor, newAttachmentIv } from "./attachment.ts";
import { AttachmentError } from "./errors.ts";
import { decodeFileInfo, type EncryptedFileInfo } from "./file-info.ts";

const BLOCK = 16;

/** The initial counter block advanced by `blocks` (128-bit big-endian addition, as AES-CTR counts). */
function counterAt(iv: Uint8Array, blocks: number): Uint8Array {
  const out = iv.slice();
  let carry = blocks;
  for (let i = BLOCK - 1; i >= 0 && carry > 0; i--) {
    const sum = (out[i] as number) + (carry % 256);
    out[i] = sum & 0xff;
    carry = Math.floor(carry / 256) + (sum >> 8);
  }
  return out;
}

/** AES-256-CTR over a chunk that starts `offset` bytes into the stream. */
class CtrStream {
  #offset = 0;
  constructor(
    private readonly key: Uint8Array,
    private readonly iv: Uint8Array,
  ) {}

  process(chunk: Uint8Array): Uint8Array {
    const skip = this.#offset % BLOCK;
    const counter = counterAt(this.iv, Math.floor(this.#offset / BLOCK));
    this.#offset += chunk.length;
    if (skip === 0) return aes256Ctr(this.key, counter, chunk);
    // Mid-block start: run the keystream from the block's start and drop the bytes before the chunk.
    const padded = new Uint8Array(skip + chunk.length);
    padded.set(chunk, skip);
    return aes256Ctr(this.key, counter, padded).subarray(skip);
  }
}

/** Encrypts an attachment chunk by chunk; `final()` gives the file description once all data went in. */
export class AttachmentEncryptor {
  readonly #key = randomBytes(32);
  readonly #iv = newAttachmentIv();
  readonly #ctr = new CtrStream(this.#key, this.#iv);
  readonly #hash: Sha256Hasher = createSha256();

  update(chunk: Uint8Array): Uint8Array {
    const out = this.#ctr.process(chunk);
    this.#hash.update(out);
    return out;
  }

  final(): EncryptedFileInfo {
    return fileInfoFor(this.#key, this.#iv, this.#hash.digest());
  }

  /** No key material in logs. */
  toJSON(): { kind: string } {
    return { kind: "AttachmentEncryptor" };
  }
}

/**
 * Decrypts an attachment chunk by chunk; `final()` throws `HASH_MISMATCH` if the ciphertext was not
 * the sender's. The decoded key is wiped by `final()` (whatever its outcome) or by `dispose()` (for a
 * decryption abandoned before its end); the decryptor takes no data after either.
 */
export class AttachmentDecryptor {
  readonly #key: Uint8Array;
  readonly #ctr: CtrStream;
  readonly #expected: Uint8Array;
  readonly #hash: Sha256Hasher = createSha256();
  /** Bytes left before the IV's counter half wraps (see `counterHalfBytes`). */
  #room: number;
  #disposed = false;

  /** Validates the description first: throws `BAD_FILE_INFO` before any data is read. */
  constructor(info: unknown) {
    const decoded = decodeFileInfo(info);
    this.#key = decoded.key;
    this.#ctr = new CtrStream(decoded.key, decoded.iv);
    this.#expected = decoded.sha256;
    this.#room = counterHalfBytes(decoded.iv);
  }

  /** Throws `BAD_FILE_INFO` (nothing decrypted) for data past the wrap of the IV's counter half. */
  update(chunk: Uint8Array): Uint8Array {
    if (this.#disposed) throw new Error("the attachment decryptor is finished or disposed");
    if (chunk.length > this.#room) {
      throw new AttachmentError("BAD_FILE_INFO", "the IV's 64-bit counter would wrap within the file");
    }
    this.#room -= chunk.length;
    this.#hash.update(chunk);
    return this.#ctr.process(chunk);
  }

  final(): void {
    try {
      if (this.#disposed) throw new Error("the attachment decryptor is finished or disposed");
      if (!constantTimeEqual(this.#hash.digest(), this.#expected)) {
        throw new AttachmentError("HASH_MISMATCH", "attachment ciphertext does not match its SHA-256 hash");
      }
    } finally {
      this.dispose();
    }
  }

  /** Wipes the key; no more data is taken. Idempotent. */
  dispose(): void {
    this.#disposed = true;
    wipe(this.#key);
  }

  toJSON(): { kind: string } {
    return { kind: "AttachmentDecryptor" };
  }
}

/**
 * Wraps a web stream of plaintext: returns the ciphertext stream and a promise of the file description,
 * which resolves when the ciphertext stream has been read to its end, or, given the plaintext's
 * `size`, as soon as that many bytes were read (before the last one is handed on: an upload with that
 * Content-Length is then answered only after the description is known). More than `size` errors.
 */
export function encryptAttachmentStream(
  plaintext: ReadableStream<Uint8Array>,
  size?: number,
): {
  ciphertext: ReadableStream<Uint8Array>;
  info: Promise<EncryptedFileInfo>;
} {
  const encryptor = new AttachmentEncryptor();
  const reader = plaintext.getReader();
  let settle!: { resolve: (info: EncryptedFileInfo) => void; reject: (e: unknown) => void };
  const info = new Promise<EncryptedFileInfo>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // A caller that abandons the stream must not get an unhandled rejection.
  info.catch(() => undefined);
  let read = 0;
  let final = false;
  const finish = () => {
    if (!final) settle.resolve(encryptor.final());
    final = true;
  };
  const ciphertext = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          finish();
          controller.close();
        } else {
          read += value.length;
          if (size !== undefined && read > size) throw new Error(`the stream is longer than ${size} bytes`);
          const out = encryptor.update(value);
          if (read === size) finish();
          controller.enqueue(out);
        }
      } catch (e) {
        settle.reject(e);
        controller.error(e);
      }
    },
    cancel(reason) {
      settle.reject(new Error("attachment stream was cancelled"));
      return reader.cancel(reason);
    },
  });
  return { ciphertext, info };
}

/**
 * Wraps a web stream of ciphertext; the returned stream errors with `HASH_MISMATCH` at its end if
 * tampered. The key is wiped when the stream ends, errors (its source's errors included) or is
 * cancelled; a stream dropped unread keeps it until it is collected.
 */
export function decryptAttachmentStream(
  ciphertext: ReadableStream<Uint8Array>,
  info: unknown,
): ReadableStream<Uint8Array> {
  const decryptor = new AttachmentDecryptor(info);
  const reader = ciphertext.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          decryptor.final();
          controller.close();
        } else {
          controller.enqueue(decryptor.update(value));
        }
      } catch (e) {
        decryptor.dispose();
        controller.error(e);
        // Releases the source when the error is ours (already settled when it was the source's).
        reader.cancel(e).catch(() => undefined);
      }
    },
    cancel(reason) {
      decryptor.dispose();
      return reader.cancel(reason);
    },
  });
}
