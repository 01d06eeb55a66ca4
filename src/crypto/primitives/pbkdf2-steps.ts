/**
 * PBKDF2-HMAC-SHA-512 (RFC 8018) in steps, for passphrases whose 500 000 iterations take long
 * enough that a user wants a progress bar. The caller runs `step(n)` as often as it likes and
 * yields to its event loop in between; the result is the same bytes as the one-shot
 * `pbkdf2Sha512`. The one-shot call is several times faster on Node (it stays inside OpenSSL),
 * so use this only where progress matters.
 */
import { assertInteger, CryptoPrimitiveError } from "./errors.ts";
import { checkPbkdf2 } from "./validate.ts";

/** HMAC-SHA-512 under one fixed key: a back end precomputes the key's pads once. */
export type KeyedHmacSha512 = (data: Uint8Array) => Uint8Array;

const SHA512_LENGTH = 64;

/** A PBKDF2-HMAC-SHA-512 computation that advances a bounded number of iterations at a time. */
export interface Pbkdf2Sha512Steps {
  /** Total HMAC iterations (iterations × output blocks). */
  readonly total: number;
  /** Iterations done so far. */
  readonly done: number;
  /** Runs at most `maxIterations` more iterations; true once the result is ready. */
  step(maxIterations: number): boolean;
  /** The derived key (a fresh copy). Throws `BAD_ARGUMENT` before the last step. */
  result(): Uint8Array;
}

export function createPbkdf2Sha512Steps(
  keyed: (key: Uint8Array) => KeyedHmacSha512,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Pbkdf2Sha512Steps {
  checkPbkdf2(password, salt, iterations, length);
  const prf = keyed(password);
  const blocks = Math.ceil(length / SHA512_LENGTH);
  const output = new Uint8Array(blocks * SHA512_LENGTH);
  const total = blocks * iterations;
  let done = 0;
  let block = 0; // the block being computed, 0-based
  let round = 0; // iterations done within that block
  let u: Uint8Array = new Uint8Array(0);

  const startBlock = (): void => {
    // U1 = PRF(P, S || INT(i)), i counted from 1, big-endian.
    const first = new Uint8Array(salt.length + 4);
    first.set(salt, 0);
    new DataView(first.buffer).setUint32(salt.length, block + 1, false);
    u = prf(first);
    output.set(u, block * SHA512_LENGTH);
    round = 1;
  };

  return {
    total,
    get done() {
      return done;
    },
    step(maxIterations: number): boolean {
      assertInteger(maxIterations, 1, Number.MAX_SAFE_INTEGER, "PBKDF2 step size");
      let budget = maxIterations;
      while (budget > 0 && block < blocks) {
        if (round === 0) {
          startBlock();
        } else {
          u = prf(u);
          const t = block * SHA512_LENGTH;
          for (let j = 0; j < SHA512_LENGTH; j++) output[t + j] = (output[t + j] ?? 0) ^ (u[j] ?? 0);
          round++;
        }
        budget--;
        done++;
        if (round === iterations) {
          block++;
          round = 0;
        }
      }
      if (block === blocks) u.fill(0);
      return block === blocks;
    },
    result(): Uint8Array {
      if (block < blocks) throw new CryptoPrimitiveError("BAD_ARGUMENT", "PBKDF2 is not finished");
      return output.slice(0, length);
    },
  };
}
