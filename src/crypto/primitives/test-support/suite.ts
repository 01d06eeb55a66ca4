/**
 * The known-answer suite every `CryptoBackend` must pass. Each back end's test file calls
 * `runBackendSuite(backend)`, so all back ends are held to the same vectors and the same refusals.
 * Vectors live in test/vectors/primitives/ (see generate.py there for their provenance).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import type { AeadBackend, CryptoBackend } from "../backend.ts";
import { CryptoPrimitiveError, type CryptoPrimitiveErrorCode } from "../errors.ts";
import { createPbkdf2Sha512Steps } from "../pbkdf2-steps.ts";

const VECTORS = new URL("../../../../test/vectors/primitives/", import.meta.url);

export function loadVectors<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(name, VECTORS), "utf8")) as T;
}

/** A vector file's `vectors`, refused when empty: a loop over none would pass without a check. */
export function vectorList<V>(name: string): V[] {
  const list = loadVectors<{ vectors: V[] }>(name).vectors;
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${name} holds no vectors`);
  return list;
}

export function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "hex"));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function throwsCode(fn: () => unknown, code: CryptoPrimitiveErrorCode): void {
  assert.throws(fn, (e: unknown) => e instanceof CryptoPrimitiveError && e.code === code);
}

interface ShaVector {
  name: string;
  message_hex?: string;
  message_repeat?: { byte_hex: string; count: number };
  digest: string;
}
interface HmacVector {
  case: number;
  key_hex: string;
  data_hex: string;
  mac: string;
  truncate_to?: number;
}
interface HkdfVector {
  case: number;
  ikm_hex: string;
  salt_hex: string;
  info_hex: string;
  length: number;
  okm: string;
}
interface Pbkdf2Vector {
  password_hex: string;
  salt_hex: string;
  iterations: number;
  length: number;
  dk: string;
}
interface AesVectors {
  key: string;
  plaintext: string;
  cbc: { iv: string; ciphertext_nopad: string; ciphertext_pkcs7: string };
  ctr: { iv: string; ciphertext: string };
  ctr_wrap: { iv: string; ciphertext: string };
}
interface X25519Vectors {
  vectors: { scalar: string; u: string; output: string }[];
  iterated: Record<"1" | "1000", string>;
  dh: Record<"alice_private" | "alice_public" | "bob_private" | "bob_public" | "shared", string>;
  low_order: string[];
}
interface Ed25519Vector {
  name: string;
  seed: string;
  public: string;
  message: string;
  signature: string;
}

export function runBackendSuite(b: CryptoBackend & AeadBackend): void {
  describe(`primitives back end "${b.name}"`, () => {
    describe("SHA-256 (FIPS 180-2)", () => {
      for (const v of vectorList<ShaVector>("sha256.json")) {
        it(v.name, () => {
          const msg =
            v.message_repeat !== undefined
              ? new Uint8Array(v.message_repeat.count).fill(Number.parseInt(v.message_repeat.byte_hex, 16))
              : hex(v.message_hex ?? "");
          assert.equal(toHex(b.sha256(msg)), v.digest);
        });
      }
    });

    describe("HMAC-SHA-256 (RFC 4231)", () => {
      for (const v of vectorList<HmacVector>("hmac-sha256.json")) {
        it(`case ${v.case}`, () => {
          const mac = b.hmacSha256(hex(v.key_hex), hex(v.data_hex));
          assert.equal(mac.length, 32);
          assert.equal(toHex(mac.subarray(0, v.truncate_to ?? 32)), v.mac);
        });
      }
      it("accepts an empty key and empty data", () => {
        assert.equal(b.hmacSha256(new Uint8Array(0), new Uint8Array(0)).length, 32);
      });
    });

    describe("HKDF-SHA-256 (RFC 5869)", () => {
      for (const v of vectorList<HkdfVector>("hkdf-sha256.json")) {
        it(`case ${v.case}`, () => {
          const okm = b.hkdfSha256(hex(v.ikm_hex), hex(v.salt_hex), hex(v.info_hex), v.length);
          assert.equal(toHex(okm), v.okm);
        });
      }
      it("prefixes agree: a shorter output is a prefix of a longer one", () => {
        const ikm = hex("0b0b0b");
        const long = b.hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 80);
        assert.deepEqual(b.hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 33), long.subarray(0, 33));
        assert.equal(b.hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 0).length, 0);
      });
      it("refuses more than 255 blocks and non-integer lengths", () => {
        const z = new Uint8Array(0);
        throwsCode(() => b.hkdfSha256(z, z, z, 255 * 32 + 1), "BAD_ARGUMENT");
        throwsCode(() => b.hkdfSha256(z, z, z, 1.5), "BAD_ARGUMENT");
        throwsCode(() => b.hkdfSha256(z, z, z, -1), "BAD_ARGUMENT");
      });
    });

    describe("PBKDF2-HMAC-SHA-512", () => {
      for (const v of vectorList<Pbkdf2Vector>("pbkdf2-sha512.json")) {
        it(`${v.iterations} iteration(s)`, () => {
          const dk = b.pbkdf2Sha512(hex(v.password_hex), hex(v.salt_hex), v.iterations, v.length);
          assert.equal(toHex(dk), v.dk);
        });
      }
      it("refuses zero or absurd iteration counts", () => {
        const p = hex("00");
        throwsCode(() => b.pbkdf2Sha512(p, p, 0, 32), "BAD_ARGUMENT");
        throwsCode(() => b.pbkdf2Sha512(p, p, 1e12, 32), "BAD_ARGUMENT");
        throwsCode(() => b.pbkdf2Sha512(p, p, 1, 0), "BAD_ARGUMENT");
      });
    });

    describe("PBKDF2-HMAC-SHA-512 in steps", () => {
      for (const v of vectorList<Pbkdf2Vector>("pbkdf2-sha512.json")) {
        for (const stepSize of [1, 7, 1000]) {
          it(`${v.iterations} iteration(s), ${stepSize} per step`, () => {
            const job = createPbkdf2Sha512Steps(
              b.createHmacSha512,
              hex(v.password_hex),
              hex(v.salt_hex),
              v.iterations,
              v.length,
            );
            throwsCode(() => job.result(), "BAD_ARGUMENT");
            let steps = 0;
            while (!job.step(stepSize)) steps++;
            assert.equal(job.done, job.total);
            assert.equal(steps, Math.ceil(v.iterations / stepSize) - 1);
            assert.equal(toHex(job.result()), v.dk);
          });
        }
      }
      it("matches the one-shot call over several output blocks and a key longer than SHA-512's block", () => {
        const password = new Uint8Array(200).fill(7);
        const salt = hex("0102");
        const job = createPbkdf2Sha512Steps(b.createHmacSha512, password, salt, 3, 150);
        assert.equal(job.total, 9);
        while (!job.step(2));
        assert.deepEqual(job.result(), b.pbkdf2Sha512(password, salt, 3, 150));
      });
      it("refuses the same arguments as the one-shot call", () => {
        const p = hex("00");
        throwsCode(() => createPbkdf2Sha512Steps(b.createHmacSha512, p, p, 0, 32), "BAD_ARGUMENT");
        throwsCode(() => createPbkdf2Sha512Steps(b.createHmacSha512, p, p, 1, 0), "BAD_ARGUMENT");
        const job = createPbkdf2Sha512Steps(b.createHmacSha512, p, p, 2, 32);
        throwsCode(() => job.step(0), "BAD_ARGUMENT");
      });
    });

    describe("ChaCha20-Poly1305 (RFC 8439)", () => {
      const v = loadVectors<Record<string, string>>("chacha20-poly1305.json");
      const key = hex(v.key_hex ?? "");
      const nonce = hex(v.nonce_hex ?? "");
      const pt = hex(v.plaintext_hex ?? "");
      const aad = hex(v.aad_hex ?? "");
      it("seals and opens the section 2.8.2 vector", () => {
        assert.equal(toHex(b.chacha20Poly1305Encrypt(key, nonce, pt, aad)), v.sealed_hex);
        assert.deepEqual(b.chacha20Poly1305Decrypt(key, nonce, hex(v.sealed_hex ?? ""), aad), pt);
      });
      it("seals without associated data as vodozemac does", () => {
        assert.equal(toHex(b.chacha20Poly1305Encrypt(key, nonce, pt)), v.sealed_no_aad_hex);
        assert.deepEqual(b.chacha20Poly1305Decrypt(key, nonce, hex(v.sealed_no_aad_hex ?? "")), pt);
      });
      it("refuses an altered tag, ciphertext or AAD, and impossible sizes", () => {
        const sealed = hex(v.sealed_hex ?? "");
        for (const i of [0, sealed.length - 1]) {
          const bad = sealed.slice();
          bad[i]! ^= 1;
          throwsCode(() => b.chacha20Poly1305Decrypt(key, nonce, bad, aad), "BAD_TAG");
        }
        throwsCode(() => b.chacha20Poly1305Decrypt(key, nonce, sealed), "BAD_TAG");
        throwsCode(() => b.chacha20Poly1305Decrypt(key, nonce, new Uint8Array(15)), "BAD_LENGTH");
        throwsCode(() => b.chacha20Poly1305Decrypt(key, new Uint8Array(24), sealed), "BAD_LENGTH");
        throwsCode(() => b.chacha20Poly1305Encrypt(new Uint8Array(16), nonce, pt), "BAD_LENGTH");
        assert.equal(b.chacha20Poly1305Encrypt(key, nonce, new Uint8Array(0)).length, 16);
      });
    });

    describe("AES-256 (NIST SP 800-38A)", () => {
      const v = loadVectors<AesVectors>("aes256.json");
      const key = hex(v.key);
      const pt = hex(v.plaintext);
      it("CBC F.2.5 encrypt: the NIST blocks, then one block of PKCS#7 padding", () => {
        const ct = b.aes256CbcEncrypt(key, hex(v.cbc.iv), pt);
        assert.equal(ct.length, pt.length + 16);
        assert.equal(toHex(ct.subarray(0, pt.length)), v.cbc.ciphertext_nopad);
        assert.equal(toHex(ct), v.cbc.ciphertext_pkcs7);
      });
      it("CBC F.2.6 decrypt", () => {
        assert.equal(toHex(b.aes256CbcDecrypt(key, hex(v.cbc.iv), hex(v.cbc.ciphertext_pkcs7))), v.plaintext);
      });
      it("CBC round trip for every length 0..48 (padding 1..16 bytes)", () => {
        const iv = hex(v.cbc.iv);
        for (let n = 0; n <= 48; n++) {
          const msg = pt.subarray(0, n);
          const ct = b.aes256CbcEncrypt(key, iv, msg);
          assert.equal(ct.length, (Math.floor(n / 16) + 1) * 16);
          assert.deepEqual(b.aes256CbcDecrypt(key, iv, ct), msg);
        }
      });
      it("CBC refuses bad padding and impossible lengths", () => {
        const iv = hex(v.cbc.iv);
        // Without its padding block the NIST plaintext ends in 0x10, but not in sixteen 0x10 bytes.
        const unpadded = hex(v.cbc.ciphertext_nopad);
        throwsCode(() => b.aes256CbcDecrypt(key, iv, unpadded), "BAD_PADDING");
        const corrupted = hex(v.cbc.ciphertext_pkcs7);
        corrupted[corrupted.length - 1]! ^= 0x01;
        throwsCode(() => b.aes256CbcDecrypt(key, iv, corrupted), "BAD_PADDING");
        throwsCode(() => b.aes256CbcDecrypt(key, iv, new Uint8Array(0)), "BAD_LENGTH");
        throwsCode(() => b.aes256CbcDecrypt(key, iv, new Uint8Array(17)), "BAD_LENGTH");
      });
      it("CTR F.5.5 encrypt / F.5.6 decrypt", () => {
        const iv = hex(v.ctr.iv);
        assert.equal(toHex(b.aes256Ctr(key, iv, pt)), v.ctr.ciphertext);
        assert.equal(toHex(b.aes256Ctr(key, iv, hex(v.ctr.ciphertext))), v.plaintext);
        // A partial last block uses a prefix of the keystream.
        assert.equal(toHex(b.aes256Ctr(key, iv, pt.subarray(0, 21))), v.ctr.ciphertext.slice(0, 42));
        assert.equal(b.aes256Ctr(key, iv, new Uint8Array(0)).length, 0);
      });
      it("CTR carries across the whole 128-bit counter", () => {
        assert.equal(toHex(b.aes256Ctr(key, hex(v.ctr_wrap.iv), pt)), v.ctr_wrap.ciphertext);
      });
      it("refuses wrong key and IV lengths", () => {
        const iv = hex(v.cbc.iv);
        throwsCode(() => b.aes256CbcEncrypt(key.subarray(0, 16), iv, pt), "BAD_LENGTH");
        throwsCode(() => b.aes256CbcEncrypt(key, iv.subarray(0, 12), pt), "BAD_LENGTH");
        throwsCode(() => b.aes256Ctr(new Uint8Array(33), iv, pt), "BAD_LENGTH");
        throwsCode(() => b.aes256Ctr(key, new Uint8Array(15), pt), "BAD_LENGTH");
      });
      it("does not modify its inputs", () => {
        const iv = hex(v.cbc.iv);
        const copy = pt.slice();
        b.aes256CbcEncrypt(key, iv, pt);
        b.aes256Ctr(key, iv, pt);
        assert.deepEqual(pt, copy);
        assert.equal(toHex(iv), v.cbc.iv);
      });
      it("CBC: a later encryption leaves an earlier ciphertext alone, at any plaintext size", () => {
        const iv = hex(v.cbc.iv);
        for (const length of [0, 15, 16, 200, 4079, 4080, 4096, 5000]) {
          const plaintext = new Uint8Array(length).map((_, i) => i * 7);
          const first = b.aes256CbcEncrypt(key, iv, plaintext);
          const copy = first.slice();
          b.aes256CbcEncrypt(key, iv, new Uint8Array(length + 1).fill(0xff));
          assert.deepEqual(first, copy, `length ${length}`);
          assert.deepEqual(b.aes256CbcDecrypt(key, iv, first), plaintext, `length ${length}`);
        }
      });
    });

    describe("X25519 (RFC 7748)", () => {
      const v = loadVectors<X25519Vectors>("x25519.json");
      for (const [i, t] of v.vectors.entries()) {
        it(`section 5.2 vector ${i + 1}`, () => {
          assert.equal(toHex(b.x25519(hex(t.scalar), hex(t.u))), t.output);
        });
      }
      it("iterated vector: 1 and 1000 iterations", () => {
        let k: Uint8Array = new Uint8Array(32);
        k[0] = 9;
        let u: Uint8Array = k.slice();
        for (let i = 1; i <= 1000; i++) {
          const next = b.x25519(k, u);
          u = k;
          k = next;
          if (i === 1) assert.equal(toHex(k), v.iterated["1"]);
        }
        assert.equal(toHex(k), v.iterated["1000"]);
      });
      it("section 6.1 Diffie-Hellman", () => {
        const { dh } = v;
        assert.equal(toHex(b.x25519PublicKey(hex(dh.alice_private))), dh.alice_public);
        assert.equal(toHex(b.x25519PublicKey(hex(dh.bob_private))), dh.bob_public);
        assert.equal(toHex(b.x25519(hex(dh.alice_private), hex(dh.bob_public))), dh.shared);
        assert.equal(toHex(b.x25519(hex(dh.bob_private), hex(dh.alice_public))), dh.shared);
      });
      it("refuses low-order public keys (all-zero shared secret) with NON_CONTRIBUTORY_KEY", () => {
        for (const u of v.low_order) {
          throwsCode(() => b.x25519(hex(v.dh.alice_private), hex(u)), "NON_CONTRIBUTORY_KEY");
        }
      });
      it("leaves its inputs alone, and a later call leaves an earlier result alone", () => {
        const { dh } = v;
        const secret = hex(dh.alice_private);
        const peer = hex(dh.bob_public);
        const pub = b.x25519PublicKey(secret);
        const shared = b.x25519(secret, peer);
        b.x25519PublicKey(hex(dh.bob_private));
        b.x25519(hex(dh.bob_private), hex(dh.alice_public));
        throwsCode(() => b.x25519(secret, hex(v.low_order[0] as string)), "NON_CONTRIBUTORY_KEY");
        assert.equal(toHex(secret), dh.alice_private);
        assert.equal(toHex(peer), dh.bob_public);
        assert.equal(toHex(pub), dh.alice_public);
        assert.equal(toHex(shared), dh.shared);
        assert.notEqual(pub.buffer, shared.buffer);
      });
      it("refuses wrong key lengths", () => {
        throwsCode(() => b.x25519PublicKey(new Uint8Array(31)), "BAD_LENGTH");
        throwsCode(() => b.x25519(new Uint8Array(32), new Uint8Array(33)), "BAD_LENGTH");
        throwsCode(() => b.x25519(new Uint8Array(64), hex(v.dh.bob_public)), "BAD_LENGTH");
      });
    });

    describe("Ed25519 (RFC 8032)", () => {
      const vectors = vectorList<Ed25519Vector>("ed25519.json");
      for (const t of vectors) {
        it(t.name, () => {
          const pub = b.ed25519PublicKey(hex(t.seed));
          assert.equal(toHex(pub), t.public);
          const secret = new Uint8Array(64);
          secret.set(hex(t.seed), 0);
          secret.set(pub, 32);
          const sig = b.ed25519Sign(secret, hex(t.message));
          assert.equal(toHex(sig), t.signature);
          assert.equal(b.ed25519Verify(pub, hex(t.message), sig), true);
        });
      }
      it("rejects altered messages, signatures and keys without throwing", () => {
        const t = vectors[2]!;
        const pub = hex(t.public);
        const msg = hex(t.message);
        const sig = hex(t.signature);
        assert.equal(b.ed25519Verify(pub, hex("af83"), sig), false);
        for (const i of [0, 31, 32, 63]) {
          const bad = sig.slice();
          bad[i]! ^= 0x01;
          assert.equal(b.ed25519Verify(pub, msg, bad), false, `signature byte ${i}`);
        }
        assert.equal(b.ed25519Verify(hex(vectors[0]!.public), msg, sig), false);
        assert.equal(b.ed25519Verify(pub, msg, sig.subarray(0, 63)), false);
        assert.equal(b.ed25519Verify(pub.subarray(0, 31), msg, sig), false);
        assert.equal(b.ed25519Verify(new Uint8Array(32), msg, sig), false);
        assert.equal(b.ed25519Verify(new Uint8Array(32).fill(0xff), msg, sig), false);
      });
      it("rejects a non-canonical S (S + L), which a malleable verifier would accept", () => {
        const t = vectors[0]!;
        const sig = hex(t.signature);
        // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
        const l = hex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let carry = 0;
        for (let i = 0; i < 32; i++) {
          const s = sig[32 + i]! + l[i]! + carry;
          sig[32 + i] = s & 0xff;
          carry = s >> 8;
        }
        assert.equal(b.ed25519Verify(hex(t.public), hex(t.message), sig), false);
      });
      it("rejects a small-order public key with a signature that would pass a lenient check", () => {
        // A = identity (y = 1), R = identity, S = 0: [S]B = R + [k]A holds for every message.
        const identity = hex(`01${"00".repeat(31)}`);
        const sig = new Uint8Array(64);
        sig.set(identity, 0);
        assert.equal(b.ed25519Verify(identity, hex("616263"), sig), false);
      });
      it("refuses wrong secret-key and seed lengths", () => {
        throwsCode(() => b.ed25519PublicKey(new Uint8Array(64)), "BAD_LENGTH");
        throwsCode(() => b.ed25519Sign(new Uint8Array(32), new Uint8Array(1)), "BAD_LENGTH");
      });
    });

    describe("randomBytes", () => {
      it("returns the requested length, and different bytes each time", () => {
        assert.equal(b.randomBytes(0).length, 0);
        const a = b.randomBytes(32);
        const c = b.randomBytes(32);
        assert.equal(a.length, 32);
        assert.notDeepEqual(a, c);
        assert.equal(b.randomBytes(70_000).length, 70_000);
      });
      it("gives every caller an array of its own, which later calls leave alone", () => {
        for (const length of [1, 16, 32, 64, 65]) {
          const a = b.randomBytes(length);
          const copy = a.slice();
          const c = b.randomBytes(length);
          assert.notEqual(a.buffer, c.buffer);
          assert.deepEqual(a, copy);
          assert.equal(a.byteOffset, 0);
          assert.equal(a.buffer.byteLength, length);
        }
      });
      it("refuses negative, fractional or huge lengths", () => {
        throwsCode(() => b.randomBytes(-1), "BAD_ARGUMENT");
        throwsCode(() => b.randomBytes(1.5), "BAD_ARGUMENT");
        throwsCode(() => b.randomBytes(2 ** 31), "BAD_ARGUMENT");
      });
    });

    describe("outputs", () => {
      it("are plain Uint8Arrays the caller owns", () => {
        const key = new Uint8Array(32).fill(1);
        const iv = new Uint8Array(16);
        const outs = [
          b.sha256(key),
          b.hmacSha256(key, key),
          b.hkdfSha256(key, key, key, 32),
          b.pbkdf2Sha512(key, key, 1, 32),
          b.aes256CbcEncrypt(key, iv, key),
          b.aes256Ctr(key, iv, key),
          b.x25519PublicKey(key),
          b.ed25519PublicKey(key),
          b.randomBytes(16),
        ];
        for (const out of outs) {
          assert.equal(Object.getPrototypeOf(out), Uint8Array.prototype);
          assert.equal(out.byteOffset, 0);
          assert.equal(out.buffer.byteLength, out.byteLength);
        }
      });
    });
  });
}
