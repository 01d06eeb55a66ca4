/**
 * Ed25519 verification through Web Crypto with exactly the verdicts of the back ends (libsodium's
 * strict rules, see `ed25519Verify` in backend-noble.ts). In Chromium the native verify is about
 * ten times faster than noble's JavaScript, which is most of a Megolm decryption's cost.
 *
 * Web Crypto engines differ from libsodium on crafted inputs: BoringSSL (Chromium) accepts
 * small-order and non-canonical public keys and small-order R, and an engine may check the
 * cofactored equation. So what Web Crypto is asked is narrowed to where every cofactorless engine
 * agrees with libsodium, and the rest is decided here or by the synchronous back end:
 * - S < L, and R a canonical encoding of a point not of small order (byte checks, here);
 * - the public key canonical, not of small order and in the prime-order subgroup (decided once
 *   per key with noble, cached with its imported CryptoKey); any other key goes to the back end's
 *   own verify, which handles mixed-order keys exactly;
 * - the engine compares the cofactorless equation on the encoding, checked once by a self-test
 *   (a valid signature must pass, one whose R carries an 8-torsion component must fail; a
 *   cofactored engine would pass it), else Web Crypto is not used for Ed25519 at all.
 */
import { ED25519_TORSION_SUBGROUP, ed25519 } from "@noble/curves/ed25519.js";
import { bytesToNumberLE, hexToBytes, numberToBytesLE } from "@noble/curves/utils.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH } from "./limits.ts";

/**
 * Imported public keys kept (with their verdict on the key checks), most recently used last: one
 * per Megolm session or device in use. Keys arrive from the network, so the cache is bounded.
 */
export const ED25519_WEB_KEY_CACHE_SIZE = 256;

type Verify = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean;
export type VerifyAsync = (
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
) => Promise<boolean>;

const Point = ed25519.Point;
const L = Point.Fn.ORDER;
/** The y-coordinates (sign bit cleared) of the eight small-order points: libsodium's blacklist. */
const SMALL_ORDER_Y = ED25519_TORSION_SUBGROUP.map((h) => {
  const y = hexToBytes(h);
  y[31]! &= 0x7f;
  return y;
});

/** y >= p = 2^255 - 19, the sign bit ignored: a non-canonical encoding. */
function nonCanonicalY(encoded: Uint8Array): boolean {
  if ((encoded[31]! & 0x7f) !== 0x7f) return false;
  for (let i = 30; i > 0; i--) if (encoded[i] !== 0xff) return false;
  return encoded[0]! >= 0xed;
}

function smallOrderY(encoded: Uint8Array): boolean {
  for (const y of SMALL_ORDER_Y) {
    let diff = (encoded[31]! & 0x7f) ^ y[31]!;
    for (let i = 0; i < 31; i++) diff |= encoded[i]! ^ y[i]!;
    if (diff === 0) return true;
  }
  return false;
}

/** Whether Web Crypto may judge signatures under this key: canonical, prime-order subgroup, not the identity. */
function keyForWebCrypto(publicKey: Uint8Array): boolean {
  try {
    const a = Point.fromBytes(publicKey, false);
    return !a.isSmallOrder() && a.isTorsionFree();
  } catch {
    return false;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function cacheKey(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

const SIGNATURE = { name: "Ed25519" } as const;

/**
 * The two self-test cases: a valid signature, and one that only a cofactored verifier accepts
 * (R = rB + T with T of order 8, S = r + kA; then SB - kA = rB, which differs from R but not
 * after multiplying by 8).
 */
function selfTestVectors(): {
  publicKey: Uint8Array;
  message: Uint8Array;
  valid: Uint8Array;
  torsioned: Uint8Array;
} {
  const message = new Uint8Array([0x6b, 0x65, 0x79, 0x72, 0x6f, 0x6f, 0x6d]);
  const a = Point.Fn.create(0x5eed_0f_ba5e_cafe_f00d_1234_5678_9abc_def0n);
  const r = Point.Fn.create(0x0dd_ba11_c0ffee_1357_2468_ace0_bdf1n);
  const publicKey = Point.BASE.multiply(a).toBytes();
  const sign = (rPoint: Uint8Array): Uint8Array => {
    const input = new Uint8Array(64 + message.length);
    input.set(rPoint, 0);
    input.set(publicKey, 32);
    input.set(message, 64);
    const k = Point.Fn.create(bytesToNumberLE(sha512(input)));
    const sig = new Uint8Array(ED25519_SIGNATURE_LENGTH);
    sig.set(rPoint, 0);
    sig.set(numberToBytesLE(Point.Fn.create(r + k * a), 32), 32);
    return sig;
  };
  const rB = Point.BASE.multiply(r);
  const torsion = Point.fromBytes(hexToBytes(ED25519_TORSION_SUBGROUP[1]!));
  return { publicKey, message, valid: sign(rB.toBytes()), torsioned: sign(rB.add(torsion).toBytes()) };
}

async function selfTest(subtle: SubtleCrypto): Promise<boolean> {
  try {
    const v = selfTestVectors();
    const key = await subtle.importKey("raw", new Uint8Array(v.publicKey), SIGNATURE, false, ["verify"]);
    const [valid, torsioned] = await Promise.all([
      subtle.verify(SIGNATURE, key, new Uint8Array(v.valid), new Uint8Array(v.message)),
      subtle.verify(SIGNATURE, key, new Uint8Array(v.torsioned), new Uint8Array(v.message)),
    ]);
    return valid && !torsioned;
  } catch {
    return false; // no Ed25519 in this engine's Web Crypto
  }
}

/** L (the group order) little-endian, for the byte-wise S < L check. */
const L_BYTES = numberToBytesLE(L, 32);

/** S < L, S little-endian (the signature is public: no need for constant time). */
function scalarBelowOrder(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    if (s[i]! !== L_BYTES[i]!) return s[i]! < L_BYTES[i]!;
  }
  return false;
}

/**
 * An asynchronous verify with the verdicts of `fallback` (the back end's synchronous one): Web
 * Crypto where the engine passed the self-test (run on first use), `fallback` otherwise. At most
 * `cacheSize` imported keys are kept (tests pass a small one). Once the self-test and a key's
 * import have settled, a verify under that key is one engine call with no await before it: the
 * per-message path of Megolm decryption, where the bookkeeping around the engine's verify was
 * measured at a fifth of its cost.
 */
export function createWebEd25519Verify(
  subtle: SubtleCrypto | undefined,
  fallback: Verify,
  cacheSize = ED25519_WEB_KEY_CACHE_SIZE,
): VerifyAsync {
  let supported: Promise<boolean> | undefined;
  /** The self-test's verdict once it settled. */
  let supportedNow: boolean | undefined;
  /**
   * Per public key: its imported CryptoKey, null when `fallback` must judge it, or the import
   * still under way.
   */
  const keys = new Map<string, CryptoKey | null | Promise<CryptoKey | null>>();
  /** The key of the last verify, and its map entry: a session's messages come one after another. */
  let lastPublicKey: Uint8Array | undefined;
  let lastKey: CryptoKey | null | undefined;

  function importedKey(
    web: SubtleCrypto,
    publicKey: Uint8Array,
  ): CryptoKey | null | Promise<CryptoKey | null> {
    if (lastPublicKey !== undefined && lastKey !== undefined && sameBytes(lastPublicKey, publicKey))
      return lastKey;
    const id = cacheKey(publicKey);
    let key = keys.get(id);
    if (key !== undefined) {
      keys.delete(id); // most recently used goes last
    } else {
      if (keys.size >= cacheSize) keys.delete(keys.keys().next().value as string);
      if (keyForWebCrypto(publicKey)) {
        const pending = web
          .importKey("raw", new Uint8Array(publicKey), SIGNATURE, false, ["verify"])
          .catch(() => null)
          .then((k) => {
            if (keys.get(id) === pending) keys.set(id, k); // unless evicted meanwhile
            return k;
          });
        key = pending;
      } else key = null;
    }
    keys.set(id, key);
    if (!(key instanceof Promise)) {
      lastPublicKey = publicKey.slice();
      lastKey = key;
    }
    return key;
  }

  function verifyWith(
    web: SubtleCrypto,
    key: CryptoKey | null,
    publicKey: Uint8Array,
    message: Uint8Array,
    signature: Uint8Array,
  ): boolean | Promise<boolean> {
    if (key === null) return fallback(publicKey, message, signature);
    return web.verify(SIGNATURE, key, new Uint8Array(signature), new Uint8Array(message));
  }

  async function afterSelfTest(
    web: SubtleCrypto,
    publicKey: Uint8Array,
    message: Uint8Array,
    signature: Uint8Array,
  ): Promise<boolean> {
    supported ??= selfTest(web);
    supportedNow = await supported;
    return verify(publicKey, message, signature);
  }

  async function afterImport(
    web: SubtleCrypto,
    pending: Promise<CryptoKey | null>,
    publicKey: Uint8Array,
    message: Uint8Array,
    signature: Uint8Array,
  ): Promise<boolean> {
    return verifyWith(web, await pending, publicKey, message, signature);
  }

  function verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    try {
      return verifyNow(publicKey, message, signature);
    } catch (e) {
      return Promise.reject(e); // as from an async function
    }
  }

  function verifyNow(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (
      subtle === undefined ||
      !(publicKey instanceof Uint8Array) ||
      !(message instanceof Uint8Array) ||
      !(signature instanceof Uint8Array) ||
      publicKey.length !== ED25519_PUBLIC_KEY_LENGTH ||
      signature.length !== ED25519_SIGNATURE_LENGTH
    ) {
      return Promise.resolve(fallback(publicKey, message, signature));
    }
    if (supportedNow === undefined) return afterSelfTest(subtle, publicKey, message, signature);
    if (!supportedNow) return Promise.resolve(fallback(publicKey, message, signature));
    const rBytes = signature.subarray(0, 32);
    if (!scalarBelowOrder(signature.subarray(32, 64)) || nonCanonicalY(rBytes) || smallOrderY(rBytes)) {
      return Promise.resolve(false);
    }
    const key = importedKey(subtle, publicKey);
    if (key instanceof Promise) return afterImport(subtle, key, publicKey, message, signature);
    return Promise.resolve(verifyWith(subtle, key, publicKey, message, signature));
  }

  return verify;
}
