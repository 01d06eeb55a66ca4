/**
 * The portable back end: audited pure-JavaScript @noble/* libraries plus WebCrypto's
 * `getRandomValues`. Runs anywhere (browsers, Deno, Bun, workers, React Native with a
 * getRandomValues polyfill). Same inputs, same outputs, same refusals as the Node back end; the
 * shared test suite holds both to the same vectors. The symmetric half is symmetric-noble.ts (a
 * module of its own, for browser bundles); this one adds Curve25519 and Ed25519 (ChaCha20-Poly1305
 * is aead-noble.ts, loaded with the dehydrated-device pickle only).
 */
import { ed25519, x25519 as noble25519 } from "@noble/curves/ed25519.js";
import { bytesToNumberLE } from "@noble/curves/utils.js";
import { sha512 } from "@noble/hashes/sha2.js";
import type { CryptoBackend } from "./backend.ts";
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SEED_LENGTH, ED25519_SIGNATURE_LENGTH } from "./limits.ts";
import { symmetricBackend } from "./symmetric-noble.ts";
import {
  checkEd25519SecretKey,
  checkEd25519Seed,
  checkEd25519SignInto,
  checkX25519Public,
  checkX25519Secret,
  isAllZero,
  nonContributory,
} from "./validate.ts";
import { subtleCrypto } from "./web-crypto.ts";
import { createWebEd25519Verify } from "./web-ed25519.ts";

function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  checkX25519Secret(secretKey);
  return noble25519.getPublicKey(secretKey);
}

function x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  checkX25519Secret(secretKey);
  checkX25519Public(publicKey);
  let out: Uint8Array;
  try {
    out = noble25519.getSharedSecret(secretKey, publicKey);
  } catch {
    // noble refuses low-order u-coordinates before running the ladder; lengths are checked above.
    throw nonContributory();
  }
  if (isAllZero(out)) throw nonContributory();
  return out;
}

function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  checkEd25519Seed(seed);
  return ed25519.getPublicKey(seed);
}

function ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  checkEd25519SecretKey(secretKey, message);
  // noble derives the public key from the seed itself; the stored half is not needed here.
  return ed25519.sign(message, secretKey.subarray(0, ED25519_SEED_LENGTH));
}

function ed25519SignInto(out: Uint8Array, secretKey: Uint8Array, message: Uint8Array): void {
  checkEd25519SignInto(out, secretKey, message);
  out.set(ed25519.sign(message, secretKey.subarray(0, ED25519_SEED_LENGTH)));
}

const Point = ed25519.Point;
const L = Point.Fn.ORDER;

/**
 * Strict verification with exactly libsodium's rules (what the Node back end runs), close to
 * ed25519-dalek's `verify_strict` that vodozemac uses:
 *   S < L; A canonical and not of small order; R not of small order; and the cofactorless
 *   equation R == [S]B - [k]A compared on the encoding.
 * noble's own `verify` checks the cofactored equation, which accepts a few crafted signatures
 * that libsodium rejects; back ends must agree on every signature, so the equation is spelled
 * out here with noble's point arithmetic.
 */
function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (
    !(publicKey instanceof Uint8Array) ||
    !(message instanceof Uint8Array) ||
    !(signature instanceof Uint8Array) ||
    publicKey.length !== ED25519_PUBLIC_KEY_LENGTH ||
    signature.length !== ED25519_SIGNATURE_LENGTH
  ) {
    return false;
  }
  try {
    const rBytes = signature.subarray(0, 32);
    const s = bytesToNumberLE(signature.subarray(32, 64));
    if (s >= L) return false;
    const a = Point.fromBytes(publicKey, false);
    if (a.isSmallOrder()) return false;
    // A non-canonical R can never equal the canonical encoding computed below, so strict
    // decoding loses nothing; a small-order R is refused as libsodium does.
    const r = Point.fromBytes(rBytes, false);
    if (r.isSmallOrder()) return false;
    const k = Point.Fn.create(bytesToNumberLE(sha512(concat3(rBytes, publicKey, message))));
    const expected = Point.BASE.multiplyUnsafe(s).subtract(a.multiplyUnsafe(k)).toBytes();
    let diff = 0;
    for (let i = 0; i < 32; i++) diff |= expected[i]! ^ rBytes[i]!;
    return diff === 0;
  } catch {
    // Undecodable points: the signature is invalid, never an exception.
    return false;
  }
}

/**
 * Ed25519 verify through Web Crypto where the runtime has it (in Chromium about ten times faster
 * than noble; see web-ed25519.ts for how its verdicts are kept equal); the synchronous verify
 * elsewhere.
 */
const ed25519VerifyAsync = createWebEd25519Verify(subtleCrypto(), ed25519Verify);

function concat3(a: Uint8Array, b: Uint8Array, c: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length + c.length);
  out.set(a, 0);
  out.set(b, a.length);
  out.set(c, a.length + b.length);
  return out;
}

export const backend: CryptoBackend = {
  ...symmetricBackend,
  x25519PublicKey,
  x25519,
  ed25519PublicKey,
  ed25519Sign,
  ed25519SignInto,
  ed25519Verify,
  ed25519VerifyAsync,
};
