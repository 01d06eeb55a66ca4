/**
 * HMAC-SHA-256 (RFC 2104) and HKDF-SHA-256 (RFC 5869) composed from a one-shot SHA-256 that
 * writes into a caller's buffer. The Node back end uses this over libsodium's SHA-256: OpenSSL 3
 * spends most of an HMAC or HKDF call of Megolm's sizes on per-call setup (provider fetch,
 * KeyObject import, a stream object), which this avoids. The construction is the textbook one,
 * H((K ^ opad) || H((K ^ ipad) || m)), checked by the RFC 4231 / 5869 vectors and against OpenSSL
 * by the back-end tests.
 *
 * Everything happens in buffers allocated once: native code is handed only those (a small new
 * Uint8Array lives on V8's heap and must be moved off it the first time native code asks for its
 * address), and no per-call views or temporaries are made, which kept Megolm decryption's garbage
 * (and so its GC time) down.
 */

/** SHA-256 of `input` written into the first 32 bytes of `out`. */
export type Sha256Into = (out: Uint8Array, input: Uint8Array) => void;

export interface HmacSha256Functions {
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /** HKDF into `out` (as many bytes as it holds). */
  hkdfSha256Into(out: Uint8Array, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): void;
}

const BLOCK = 64;
const DIGEST = 32;
const IPAD = 0x36;
const OPAD = 0x5c;
/** Inputs up to this size are hashed in the shared buffer; longer ones get a buffer of their own. */
const SCRATCH_DATA = 1024;

export function hmacOverSha256(sha256Into: Sha256Into): HmacSha256Functions {
  // One block of padded key followed by the data (or the inner digest). Single-threaded and
  // synchronous, so shared buffers are safe; each is wiped after use (they held key bytes).
  const scratch = new Uint8Array(BLOCK + SCRATCH_DATA);
  const digest = new Uint8Array(DIGEST);
  const hashedKey = new Uint8Array(DIGEST);
  const prk = new Uint8Array(DIGEST);
  const views: (Uint8Array | undefined)[] = [];
  const prefix = (length: number): Uint8Array => {
    let view = views[length];
    if (view === undefined) {
      view = scratch.subarray(0, length);
      views[length] = view;
    }
    return view;
  };

  /**
   * HMAC under `key` of the `dataLength` bytes already at `buf[BLOCK..]`, into `digest`. `buf` is
   * the shared scratch or a buffer of at least BLOCK + max(dataLength, DIGEST) bytes. Wipes `buf`
   * up to where it wrote.
   */
  function hmacInPlace(key: Uint8Array, buf: Uint8Array, dataLength: number): void {
    let k = key;
    if (k.length > BLOCK) {
      sha256Into(hashedKey, k);
      k = hashedKey;
    }
    const shared = buf === scratch;
    for (let i = 0; i < k.length; i++) buf[i] = k[i]! ^ IPAD;
    buf.fill(IPAD, k.length, BLOCK);
    sha256Into(digest, shared ? prefix(BLOCK + dataLength) : buf.subarray(0, BLOCK + dataLength));
    for (let i = 0; i < k.length; i++) buf[i] = k[i]! ^ OPAD;
    buf.fill(OPAD, k.length, BLOCK);
    buf.set(digest, BLOCK);
    sha256Into(digest, shared ? prefix(BLOCK + DIGEST) : buf.subarray(0, BLOCK + DIGEST));
    buf.fill(0, 0, BLOCK + Math.max(dataLength, DIGEST));
    if (k === hashedKey) hashedKey.fill(0);
  }

  function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    const buf = data.length <= SCRATCH_DATA ? scratch : new Uint8Array(BLOCK + Math.max(data.length, DIGEST));
    buf.set(data, BLOCK);
    hmacInPlace(key, buf, data.length);
    const out = digest.slice();
    digest.fill(0);
    return out;
  }

  function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    const okm = new Uint8Array(length);
    hkdfSha256Into(okm, ikm, salt, info);
    return okm;
  }

  function hkdfSha256Into(okm: Uint8Array, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): void {
    const length = okm.length;
    // Extract. An empty salt is HashLen zero bytes, which HMAC pads to the same block as no key.
    const big = ikm.length > SCRATCH_DATA || DIGEST + info.length + 1 > SCRATCH_DATA;
    const buf = big ? new Uint8Array(BLOCK + Math.max(ikm.length, DIGEST + info.length + 1)) : scratch;
    buf.set(ikm, BLOCK);
    hmacInPlace(salt, buf, ikm.length);
    prk.set(digest);
    // Expand: T(i) = HMAC(PRK, T(i-1) || info || i), T(0) empty, written straight into the output.
    for (let i = 1, done = 0; done < length; i++) {
      let n = 0;
      if (i > 1) {
        buf.set(digest, BLOCK);
        n = DIGEST;
      }
      buf.set(info, BLOCK + n);
      n += info.length;
      buf[BLOCK + n++] = i;
      hmacInPlace(prk, buf, n);
      const take = Math.min(DIGEST, length - done);
      for (let j = 0; j < take; j++) okm[done + j] = digest[j]!;
      done += take;
    }
    prk.fill(0);
    digest.fill(0);
  }

  return { hmacSha256, hkdfSha256, hkdfSha256Into };
}
