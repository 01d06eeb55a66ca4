/**
 * HMAC-SHA-256 (RFC 2104) and HKDF-SHA-256 (RFC 5869) composed from a one-shot SHA-256 that
 * writes into a caller's buffer. The Node back end uses this over libsodium's SHA-256: OpenSSL 3
 * spends most of an HMAC or HKDF call of Megolm's sizes on per-call setup (provider fetch,
 * KeyObject import, a stream object), which this avoids. Native code only ever sees buffers
 * allocated once here: a small new Uint8Array lives on V8's heap and must be moved off it (an
 * allocation and a copy) the first time native code asks for its address. The construction is the textbook one,
 * H((K ^ opad) || H((K ^ ipad) || m)), checked by the RFC 4231 / 5869 vectors and against OpenSSL
 * by the back-end tests.
 */

/** SHA-256 of `input` written into the first 32 bytes of `out`. */
export type Sha256Into = (out: Uint8Array, input: Uint8Array) => void;

export interface HmacSha256Functions {
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
}

const BLOCK = 64;
const DIGEST = 32;
const IPAD = 0x36;
const OPAD = 0x5c;
/** Inputs up to this size reuse one buffer; longer ones get a buffer of their own. */
const SCRATCH_DATA = 1024;

export function hmacOverSha256(sha256Into: Sha256Into): HmacSha256Functions {
  // One block of padded key followed by the data (or the inner digest). Single-threaded and
  // synchronous, so one shared buffer is safe; it is wiped after every use (it held key bytes).
  const scratch = new Uint8Array(BLOCK + SCRATCH_DATA);
  const hashedKey = new Uint8Array(DIGEST);
  const digest = new Uint8Array(DIGEST);
  // Views of the scratch buffer by length, made once: a fresh subarray per hash was the largest
  // source of garbage on the Megolm decryption path.
  const views: (Uint8Array | undefined)[] = [];
  const prefix = (length: number): Uint8Array => {
    let view = views[length];
    if (view === undefined) {
      view = scratch.subarray(0, length);
      views[length] = view;
    }
    return view;
  };

  /** HMAC of `data` under `key`, written into `out` (32 bytes, may alias neither input). */
  function hmacInto(out: Uint8Array, key: Uint8Array, data: Uint8Array): void {
    let k = key;
    if (k.length > BLOCK) {
      sha256Into(hashedKey, k);
      k = hashedKey;
    }
    const buf = data.length <= SCRATCH_DATA ? scratch : new Uint8Array(BLOCK + data.length);
    for (let i = 0; i < k.length; i++) buf[i] = k[i]! ^ IPAD;
    buf.fill(IPAD, k.length, BLOCK);
    buf.set(data, BLOCK);
    const inner = BLOCK + data.length;
    sha256Into(digest, buf === scratch ? prefix(inner) : buf);
    for (let i = 0; i < k.length; i++) buf[i] = k[i]! ^ OPAD;
    buf.fill(OPAD, k.length, BLOCK);
    buf.set(digest, BLOCK);
    sha256Into(digest, buf === scratch ? prefix(BLOCK + DIGEST) : buf.subarray(0, BLOCK + DIGEST));
    out.set(digest);
    buf.fill(0, 0, BLOCK + Math.max(data.length, DIGEST));
    digest.fill(0);
    if (k === hashedKey) hashedKey.fill(0);
  }

  function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    const out = new Uint8Array(DIGEST);
    hmacInto(out, key, data);
    return out;
  }

  function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    // An empty salt is HashLen zero bytes, which HMAC pads to the same block as no key at all.
    const prk = new Uint8Array(DIGEST);
    hmacInto(prk, salt, ikm);
    const blocks = Math.ceil(length / DIGEST);
    const okm = new Uint8Array(blocks * DIGEST);
    // T(i) = HMAC(PRK, T(i-1) || info || i), T(0) empty.
    const message = new Uint8Array(DIGEST + info.length + 1);
    message.set(info, DIGEST);
    for (let i = 1; i <= blocks; i++) {
      message[DIGEST + info.length] = i;
      const input = i === 1 ? message.subarray(DIGEST) : message;
      const t = okm.subarray((i - 1) * DIGEST, i * DIGEST);
      hmacInto(t, prk, input);
      message.set(t, 0);
    }
    prk.fill(0);
    message.fill(0);
    if (okm.length === length) return okm;
    const out = okm.slice(0, length);
    okm.fill(0);
    return out;
  }

  return { hmacSha256, hkdfSha256 };
}
