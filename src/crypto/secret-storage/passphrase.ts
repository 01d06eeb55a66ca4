/**
 * Secret storage keys from passphrases (`m.pbkdf2`): PBKDF2-HMAC-SHA-512 over the UTF-8
 * passphrase, with the description's salt (a string, used as its UTF-8 bytes) and iteration count.
 */
import {
  createPbkdf2Sha512Steps,
  PBKDF2_MAX_ITERATIONS,
  type Pbkdf2Sha512Steps,
  pbkdf2Sha512,
  utf8Encode,
  wipe,
} from "../primitives/symmetric.ts";
import { SECRET_STORAGE_KEY_LENGTH } from "./aes-hmac-sha2.ts";
import { SecretStorageError } from "./errors.ts";
import { randomAlphanumeric } from "./random.ts";

export const PBKDF2_ALGORITHM = "m.pbkdf2";
/** Iterations for new passphrase keys (what Element, matrix-js-sdk and the rust-sdk use). */
export const DEFAULT_PASSPHRASE_ITERATIONS = 500_000;
/**
 * Fewest iterations a passphrase key may have before we call its parameters weak. Element,
 * matrix-js-sdk and the rust-sdk all create keys with 500 000, so a lower count in a description
 * is either a key made by an unusual client or a server lowering the cost of guessing the
 * passphrase; weak parameters are refused as described at {@link passphraseWeakness}.
 */
export const MIN_PASSPHRASE_ITERATIONS = DEFAULT_PASSPHRASE_ITERATIONS;
/**
 * Shortest salt (characters) before parameters are weak: 16 characters are at least 128 bits
 * (NIST SP 800-132's minimum). Ours and other clients' are 32 random alphanumerics.
 */
export const MIN_PASSPHRASE_SALT_LENGTH = 16;
/**
 * The most iterations we run for a description read from the server: a hostile server could
 * otherwise tie up the CPU for hours with one account-data event.
 */
export const MAX_PASSPHRASE_ITERATIONS = PBKDF2_MAX_ITERATIONS;
/** Longest salt we accept (characters); ours are 32. */
export const MAX_PASSPHRASE_SALT_LENGTH = 1024;
/** Iterations run per `step` of {@link PassphraseKeyDerivation} unless the caller says otherwise. */
export const PASSPHRASE_STEP_ITERATIONS = 10_000;

/** The `passphrase` member of a key description. */
export interface PassphraseInfo {
  readonly algorithm: typeof PBKDF2_ALGORITHM;
  readonly salt: string;
  readonly iterations: number;
  /** Always 256 for aes-hmac-sha2 keys; written only when it was read. */
  readonly bits?: number;
}

export { randomAlphanumeric };

/**
 * Passphrase parameters for a new key: a fresh 32-character salt. `iterations` may be raised, not
 * lowered below {@link MIN_PASSPHRASE_ITERATIONS} (`BAD_ARGUMENT`).
 */
export function newPassphraseInfo(iterations: number = DEFAULT_PASSPHRASE_ITERATIONS): PassphraseInfo {
  if (
    !Number.isInteger(iterations) ||
    iterations < MIN_PASSPHRASE_ITERATIONS ||
    iterations > MAX_PASSPHRASE_ITERATIONS
  ) {
    throw new SecretStorageError(
      "BAD_ARGUMENT",
      `iterations must be an integer from ${MIN_PASSPHRASE_ITERATIONS} to ${MAX_PASSPHRASE_ITERATIONS}`,
    );
  }
  return { algorithm: PBKDF2_ALGORITHM, salt: randomAlphanumeric(32), iterations };
}

/** Validates the `passphrase` member of a key description. Throws `BAD_KEY_DESCRIPTION`. */
export function parsePassphraseInfo(value: unknown): PassphraseInfo {
  const bad = (why: string) => new SecretStorageError("BAD_KEY_DESCRIPTION", `passphrase: ${why}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("not an object");
  const r = value as Record<string, unknown>;
  if (r.algorithm !== PBKDF2_ALGORITHM) throw bad("the algorithm is not m.pbkdf2");
  if (typeof r.salt !== "string" || r.salt.length > MAX_PASSPHRASE_SALT_LENGTH) throw bad("bad salt");
  if (!isWellFormed(r.salt)) throw bad("the salt is not well-formed Unicode");
  const iterations = r.iterations;
  if (typeof iterations !== "number" || !Number.isInteger(iterations) || iterations < 1) {
    throw bad("iterations must be a positive integer");
  }
  if (iterations > MAX_PASSPHRASE_ITERATIONS) throw bad(`more than ${MAX_PASSPHRASE_ITERATIONS} iterations`);
  if (r.bits !== undefined && r.bits !== SECRET_STORAGE_KEY_LENGTH * 8) {
    throw bad("bits must be 256 for this algorithm");
  }
  return {
    algorithm: PBKDF2_ALGORITHM,
    salt: r.salt,
    iterations,
    ...(r.bits === undefined ? {} : { bits: r.bits }),
  };
}

/**
 * Why `info`'s parameters are weak (too few iterations, too short a salt), or undefined when they
 * meet the floors. The policy, applied in src/e2ee/secret-storage:
 * - A description WITHOUT a key check (`iv`/`mac`) and with weak parameters is refused
 *   (`WEAK_PASSPHRASE_PARAMETERS`) before any derivation: nothing could tell a key derived with
 *   parameters the server chose from the real one, and a secret we then wrote under it would let
 *   the server guess the passphrase at the cost the server picked.
 * - A description WITH a key check opens even when weak: the check proves the parameters are the
 *   ones the key was made with (a server cannot forge it without the passphrase), and the check
 *   already lets anyone holding it guess at that cost, so reading adds nothing. But nothing new is
 *   written under such a key (`WEAK_PASSPHRASE_PARAMETERS`): the user moves the secrets to a new
 *   key (recovery's `changeRecoveryKey`), made with our parameters.
 * - New keys are never made with weak parameters (`newPassphraseInfo`, `buildKeyDescription`).
 * Malformed parameters (bits other than 256, iterations that are not a positive integer or above
 * {@link MAX_PASSPHRASE_ITERATIONS}) are `BAD_KEY_DESCRIPTION` in {@link parsePassphraseInfo}.
 */
export function passphraseWeakness(info: PassphraseInfo): string | undefined {
  if (info.iterations < MIN_PASSPHRASE_ITERATIONS) {
    return `fewer than ${MIN_PASSPHRASE_ITERATIONS} PBKDF2 iterations`;
  }
  if (info.salt.length < MIN_PASSPHRASE_SALT_LENGTH) {
    return `a salt shorter than ${MIN_PASSPHRASE_SALT_LENGTH} characters`;
  }
  return undefined;
}

function isWellFormed(text: string): boolean {
  try {
    utf8Encode(text);
    return true;
  } catch {
    return false;
  }
}

function assertPassphrase(passphrase: string): void {
  if (typeof passphrase !== "string" || !isWellFormed(passphrase)) {
    throw new SecretStorageError("BAD_ARGUMENT", "a passphrase is a well-formed Unicode string");
  }
}

/** The 32-byte key for a passphrase, in one call (the fastest way; no progress). */
export function deriveKeyFromPassphrase(passphrase: string, info: PassphraseInfo): Uint8Array {
  assertPassphrase(passphrase);
  const password = utf8Encode(passphrase);
  try {
    return pbkdf2Sha512(password, utf8Encode(info.salt), info.iterations, SECRET_STORAGE_KEY_LENGTH);
  } finally {
    wipe(password);
  }
}

/**
 * The same derivation in steps, for a progress bar: call `step()` until it returns true, yielding
 * to the event loop in between, then `result()`. Sans-I/O: the caller owns the scheduling.
 */
export class PassphraseKeyDerivation {
  readonly #steps: Pbkdf2Sha512Steps;

  constructor(passphrase: string, info: PassphraseInfo) {
    assertPassphrase(passphrase);
    const password = utf8Encode(passphrase);
    this.#steps = createPbkdf2Sha512Steps(
      password,
      utf8Encode(info.salt),
      info.iterations,
      SECRET_STORAGE_KEY_LENGTH,
    );
    wipe(password); // the keyed HMAC holds its own pads
  }

  /** Runs up to `iterations` more PBKDF2 iterations; true when the key is ready. */
  step(iterations: number = PASSPHRASE_STEP_ITERATIONS): boolean {
    return this.#steps.step(iterations);
  }

  /** Fraction done, 0 to 1. */
  get progress(): number {
    return this.#steps.done / this.#steps.total;
  }

  /** The derived key; throws before the last step. */
  result(): Uint8Array {
    return this.#steps.result();
  }

  toJSON(): string {
    return "[PassphraseKeyDerivation]";
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[PassphraseKeyDerivation]";
  }
}

/**
 * Derives the key in steps, reporting progress (0 to 1) and awaiting `yieldControl` between steps
 * so that a UI stays live. The caller supplies `yieldControl` (the client's is portable:
 * src/client/yield.ts); protocol code schedules nothing itself.
 */
export async function deriveKeyFromPassphraseWithProgress(
  passphrase: string,
  info: PassphraseInfo,
  options: {
    readonly onProgress?: (fraction: number) => void;
    readonly yieldControl: () => Promise<void>;
    readonly stepIterations?: number;
  },
): Promise<Uint8Array> {
  const job = new PassphraseKeyDerivation(passphrase, info);
  options.onProgress?.(0);
  while (!job.step(options.stepIterations ?? PASSPHRASE_STEP_ITERATIONS)) {
    options.onProgress?.(job.progress);
    await options.yieldControl();
  }
  options.onProgress?.(1);
  return job.result();
}
