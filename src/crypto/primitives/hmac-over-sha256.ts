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
  /** HMAC into `out` (32 bytes), which may overlap `key` or `data`: both are read first. */
  hmacSha256Into(out: Uint8Array, key: Uint8Array, data: Uint8Array): void;
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
  // Two working buffers, allocated once (single-threaded and synchronous, so sharing is safe; both
  // are wiped after each call, they hold key bytes):
  // - `inner`: the key's inner pad block (K ^ ipad) followed by the data;
  // - `outer`: the outer pad block (K ^ opad) followed by the inner digest, which the hash writes
  //   straight into `outerTail`, a view made once.
  // A key's pads are computed once per call (and once for HKDF's three expansion steps under one
  // PRK): only the data and digests change between hashes.
  const inner = new Uint8Array(BLOCK + SCRATCH_DATA);
  const outer = new Uint8Array(BLOCK + DIGEST);
  const outerTail = outer.subarray(BLOCK);
  const digest = new Uint8Array(DIGEST);
  const hashedKey = new Uint8Array(DIGEST);
  const views: (Uint8Array | undefined)[] = [];
  const prefix = (length: number): Uint8Array => {
    let view = views[length];
    if (view === undefined) {
      view = inner.subarray(0, length);
      views[length] = view;
    }
    return view;
  };

  /** Writes K ^ ipad into `buf[0..BLOCK)` and K ^ opad into `outer[0..BLOCK)`. */
  function setPads(key: Uint8Array, buf: Uint8Array): void {
    let k = key;
    if (k.length > BLOCK) {
      sha256Into(hashedKey, k);
      k = hashedKey;
    }
    const n = k.length;
    for (let i = 0; i < n; i++) {
      const b = k[i]!;
      buf[i] = b ^ IPAD;
      outer[i] = b ^ OPAD;
    }
    if (n < BLOCK) {
      buf.fill(IPAD, n, BLOCK);
      outer.fill(OPAD, n, BLOCK);
    }
    if (k === hashedKey) hashedKey.fill(0);
  }

  /** HMAC of the `dataLength` bytes at `buf[BLOCK..]` under the pads already set, into `digest`. */
  function hmacWithPads(buf: Uint8Array, dataLength: number): void {
    sha256Into(outerTail, buf === inner ? prefix(BLOCK + dataLength) : buf.subarray(0, BLOCK + dataLength));
    sha256Into(digest, outer);
  }

  function wipeBuffers(buf: Uint8Array, used: number): void {
    buf.fill(0, 0, used);
    outer.fill(0);
  }

  function hmacSha256Into(out: Uint8Array, key: Uint8Array, data: Uint8Array): void {
    const buf = data.length <= SCRATCH_DATA ? inner : new Uint8Array(BLOCK + data.length);
    setPads(key, buf);
    buf.set(data, BLOCK);
    // The last hash writes straight into `out`: no digest copy, no new array.
    sha256Into(outerTail, buf === inner ? prefix(BLOCK + data.length) : buf.subarray(0, BLOCK + data.length));
    sha256Into(out, outer);
    wipeBuffers(buf, BLOCK + data.length);
  }

  function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    const out = new Uint8Array(DIGEST);
    hmacSha256Into(out, key, data);
    return out;
  }

  function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    const okm = new Uint8Array(length);
    hkdfSha256Into(okm, ikm, salt, info);
    return okm;
  }

  function hkdfSha256Into(okm: Uint8Array, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): void {
    const length = okm.length;
    const expandLength = DIGEST + info.length + 1;
    const big = ikm.length > SCRATCH_DATA || expandLength > SCRATCH_DATA;
    const buf = big ? new Uint8Array(BLOCK + Math.max(ikm.length, expandLength)) : inner;
    // Extract: PRK = HMAC(salt, IKM). An empty salt is HashLen zero bytes, which HMAC pads to the
    // same block as no key.
    setPads(salt, buf);
    buf.set(ikm, BLOCK);
    hmacWithPads(buf, ikm.length);
    buf.fill(0, BLOCK, BLOCK + ikm.length);
    // Expand: T(i) = HMAC(PRK, T(i-1) || info || i), T(0) empty, written straight into the
    // output. The PRK's pads are set once for all steps.
    setPads(digest, buf);
    for (let i = 1, done = 0; done < length; i++) {
      let n = 0;
      if (i > 1) {
        buf.set(digest, BLOCK);
        n = DIGEST;
      }
      buf.set(info, BLOCK + n);
      n += info.length;
      buf[BLOCK + n++] = i;
      hmacWithPads(buf, n);
      const take = Math.min(DIGEST, length - done);
      for (let j = 0; j < take; j++) okm[done + j] = digest[j]!;
      done += take;
    }
    wipeBuffers(buf, BLOCK + expandLength);
    digest.fill(0);
  }

  return { hmacSha256, hmacSha256Into, hkdfSha256, hkdfSha256Into };
}
