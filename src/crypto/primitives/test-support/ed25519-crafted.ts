/**
 * Crafted Ed25519 signatures on which verifiers disagree: a mixed-order public key (the
 * cofactorless equation holds for about one message in eight), R with a torsion component (only
 * a cofactored verifier accepts), small-order R with S = k·a (accepted by an engine without
 * libsodium's small-order check on R), S + L, non-canonical and small-order encodings. Pure
 * noble code, so the Node tests and the Chromium test (test/browser/web-crypto.test.ts) use the
 * same cases. `expected` is libsodium's verdict where the case fixes it.
 */
import { ED25519_TORSION_SUBGROUP, ed25519 } from "@noble/curves/ed25519.js";
import { bytesToNumberLE, hexToBytes, numberToBytesLE } from "@noble/curves/utils.js";
import { sha512 } from "@noble/hashes/sha2.js";

export interface CraftedCase {
  readonly label: string;
  readonly publicKey: Uint8Array;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
  /** libsodium's verdict, where the construction fixes it. */
  readonly expected?: boolean;
}

const Point = ed25519.Point;
const Fn = Point.Fn;

/** A signature by secret scalar `a` (public key `publicKey`) whose R is `rPoint` and nonce `r`. */
function craft(a: bigint, publicKey: Uint8Array, r: bigint, rPoint: Uint8Array, msg: Uint8Array): Uint8Array {
  const input = new Uint8Array(64 + msg.length);
  input.set(rPoint, 0);
  input.set(publicKey, 32);
  input.set(msg, 64);
  const k = Fn.create(bytesToNumberLE(sha512(input)));
  const sig = new Uint8Array(64);
  sig.set(rPoint, 0);
  sig.set(numberToBytesLE(Fn.create(r + k * a), 32), 32);
  return sig;
}

export function craftedEd25519Cases(): CraftedCase[] {
  const cases: CraftedCase[] = [];
  const a = Fn.create(0x1234_5678_9abc_def0_1122_3344_5566_7788n);
  const A = Point.BASE.multiply(a);
  const pub = A.toBytes();
  const torsion = ED25519_TORSION_SUBGROUP.map((h) => Point.fromBytes(hexToBytes(h)));
  const mixedPub = A.add(torsion[1]!).toBytes();
  for (let i = 0; i < 48; i++) {
    const message = new Uint8Array([i, 7]);
    const r = Fn.create(0xdead_beefn + BigInt(i) * 0x1_0000_0001n);
    const rB = Point.BASE.multiply(r);
    const signature = craft(a, mixedPub, r, rB.toBytes(), message);
    cases.push({ label: `mixed-order key ${i}`, publicKey: mixedPub, message, signature });
    const t = torsion[1 + (i % 7)]!;
    const torsioned = craft(a, pub, r, rB.add(t).toBytes(), message);
    cases.push({ label: `R + T ${i}`, publicKey: pub, message, signature: torsioned, expected: false });
  }
  const message = new Uint8Array([42]);
  for (const [j, t] of torsion.entries()) {
    cases.push({
      label: `small-order R ${j}`,
      publicKey: pub,
      message,
      signature: craft(a, pub, 0n, t.toBytes(), message),
      expected: false,
    });
    const flipped = hexToBytes(ED25519_TORSION_SUBGROUP[j]!);
    flipped[31]! ^= 0x80; // the other sign bit: non-canonical for x = 0
    cases.push({
      label: `small-order R ${j}, sign flipped`,
      publicKey: pub,
      message,
      signature: craft(a, pub, 0n, flipped, message),
      expected: false,
    });
    const small = t.toBytes();
    const bySmall = craft(0n, small, 5n, Point.BASE.multiply(5n).toBytes(), message);
    cases.push({
      label: `small-order key ${j}`,
      publicKey: small,
      message,
      signature: bySmall,
      expected: false,
    });
  }
  const r = 0x77n;
  const good = craft(a, pub, r, Point.BASE.multiply(r).toBytes(), message);
  cases.push({ label: "valid", publicKey: pub, message, signature: good, expected: true });
  const bigS = good.slice();
  bigS.set(numberToBytesLE(bytesToNumberLE(good.subarray(32)) + Fn.ORDER, 32), 32);
  cases.push({ label: "S + L", publicKey: pub, message, signature: bigS, expected: false });
  for (const low of [0xed, 0xee, 0xf0, 0xff]) {
    const enc = new Uint8Array(32).fill(0xff);
    enc[0] = low;
    enc[31] = 0x7f;
    const sig = good.slice();
    sig.set(enc, 0);
    cases.push({ label: `R y >= p (${low})`, publicKey: pub, message, signature: sig, expected: false });
    cases.push({ label: `key y >= p (${low})`, publicKey: enc, message, signature: good, expected: false });
  }
  cases.push({ label: "short key", publicKey: pub.subarray(1), message, signature: good, expected: false });
  cases.push({
    label: "short signature",
    publicKey: pub,
    message,
    signature: good.subarray(1),
    expected: false,
  });
  return cases;
}
