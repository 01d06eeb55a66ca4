// Keyroom's Olm and Megolm operations (with whichever primitives back end this process resolved:
// `--conditions=keyroom-noble` selects the portable one), and their primitive floors.
import { Account } from "../src/crypto/olm/index.ts";
import {
  aes256CbcDecrypt,
  aes256CbcEncrypt,
  decodeBase64,
  ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
  encodeBase64,
  hkdfSha256,
  hmacSha256,
  randomBytes,
  x25519,
  x25519PublicKey,
} from "../src/crypto/primitives/index.ts";
import { measure } from "./harness.ts";
import { keyroomMegolmOps } from "./keyroom-megolm.ts";
import { type CryptoOp, MESSAGE_200, type OpSet } from "./ops.ts";

export { backendName } from "../src/crypto/primitives/index.ts";

export function keyroomOps(): OpSet {
  const bob = Account.create();
  bob.generateFallbackKey();
  const bobIdentity = bob.identityKeys.curve25519;
  const bobFallback = Object.values(bob.fallbackKey())[0] as string;
  const alice = Account.create();
  const aliceIdentity = alice.identityKeys.curve25519;
  // Pre-key messages to Bob's fallback key, which inbound session creation does not consume.
  const preKeyMessages = Array.from({ length: 256 }, () =>
    alice.createOutboundSession(bobIdentity, bobFallback).encrypt(MESSAGE_200),
  );
  let next = 0;
  return {
    accountCreate: () => {
      const account = Account.create();
      account.generateOneTimeKeys(50);
      return account;
    },
    olmOutbound: () => alice.createOutboundSession(bobIdentity, bobFallback).encrypt(MESSAGE_200),
    olmInbound: () =>
      bob.createInboundSession(aliceIdentity, preKeyMessages[next++ & 255] as (typeof preKeyMessages)[0]),
    ...keyroomMegolmOps(),
  };
}

/** The primitive floor: the same primitive calls each op must make, timed alone. */
export function keyroomFloors(budgetMs: number): Partial<Record<CryptoOp, number>> {
  const key32 = randomBytes(32);
  const iv = randomBytes(16);
  const edSeed = randomBytes(32);
  const edSecret = new Uint8Array(64);
  edSecret.set(edSeed);
  edSecret.set(ed25519PublicKey(edSeed), 32);
  const peer = x25519PublicKey(randomBytes(32));
  const msg208 = randomBytes(208);
  const msg224 = randomBytes(224);
  const signature = ed25519Sign(edSecret, msg224);
  // Distinct signed messages for the decryption's verify: each Megolm message has its own
  // signature and hash, and verifying one message over and over lets the branch predictor learn
  // libsodium's variable-time double scalar multiplication (36.5–39.1 µs a verify here, against
  // 39.4–41.7 over 256 messages in turn). Session import and the far row verify the same
  // signature every call, as the row itself does.
  const signed = Array.from({ length: 256 }, () => {
    const m = randomBytes(224);
    return { m, s: ed25519Sign(edSecret, m) };
  });
  let nextSigned = 0;
  const ciphertext208 = aes256CbcEncrypt(key32, iv, msg208.subarray(0, 200));
  const us = (name: string, fn: () => unknown) => 1e6 / measure(name, fn, { budgetMs }).opsPerSec;
  const t = {
    random32: us("random", () => randomBytes(32)),
    x25519Pub: us("x25519 pub", () => x25519PublicKey(key32)),
    x25519: us("x25519", () => x25519(key32, peer)),
    edPub: us("ed25519 pub", () => ed25519PublicKey(edSeed)),
    sign: us("sign", () => ed25519Sign(edSecret, msg224)),
    verify: us("verify", () => ed25519Verify(edSecret.subarray(32), msg224, signature)),
    verifyEach: us("verify, a message each", () => {
      const x = signed[nextSigned++ & 255] as (typeof signed)[0];
      return ed25519Verify(edSecret.subarray(32), x.m, x.s);
    }),
    hkdf: us("hkdf", () => hkdfSha256(key32, new Uint8Array(0), key32, 80)),
    hmac: us("hmac", () => hmacSha256(key32, msg224)),
    hmac1: us("hmac 1 B", () => hmacSha256(key32, key32.subarray(0, 1))),
    cbcEnc: us("cbc enc", () => aes256CbcEncrypt(key32, iv, msg208.subarray(0, 200))),
    // The decryption alone (an encryption inside the timed call had added 2.5–2.9 µs).
    cbcDec: us("cbc dec", () => aes256CbcDecrypt(key32, iv, ciphertext208)),
    b64: us("base64", () => decodeBase64(encodeBase64(msg224))),
  };
  const floor = (micros: number) => 1e6 / micros;
  return {
    // Identity keys (Ed25519 + Curve25519) and 50 Curve25519 one-time keys.
    accountCreate: floor(t.edPub + 51 * t.x25519Pub + 52 * t.random32),
    // Base and ratchet key pairs, triple DH, root HKDF; then chain step, message-key HKDF, AES, MAC.
    olmOutbound: floor(
      2 * t.random32 + 2 * t.x25519Pub + 3 * t.x25519 + 2 * t.hkdf + 2 * t.hmac1 + t.hmac + t.cbcEnc,
    ),
    // Triple DH, root HKDF; chain step, message-key HKDF, MAC check, AES.
    olmInbound: floor(3 * t.x25519 + 2 * t.hkdf + 2 * t.hmac1 + t.hmac + t.cbcDec),
    // Ratchet step (about one hash per message), HKDF, AES, MAC, signature, base64.
    megolmEncrypt: floor(t.hmac1 + t.hkdf + t.cbcEnc + t.hmac + t.sign + t.b64 / 2),
    // Signature check, ratchet step, HKDF, MAC check, AES, base64.
    megolmDecrypt: floor(t.verifyEach + t.hmac1 + t.hkdf + t.hmac + t.cbcDec + t.b64 / 2),
    // Session import (signature check), then 100 000 = 0x01_86A0: 1 + 3, 0x86 + 1 and 0xA0 ratchet
    // hashes (one per step of each part, one per reset of the parts below), then decrypt as above.
    megolmDecryptFar: floor(2 * t.verify + 299 * t.hmac1 + t.hkdf + t.hmac + t.cbcDec + t.b64 / 2),
  };
}
