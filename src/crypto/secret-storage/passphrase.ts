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
} from "../primitives/index.ts";
import { SECRET_STORAGE_KEY_LENGTH } from "./aes-hmac-sha2.ts";
import { SecretStorageError } from "./errors.ts";
import { randomAlphanumeric } from "./random.ts";

export const PBKDF2_ALGORITHM = "m.pbkdf2";
/** Iterations for new passphrase keys (what Element and the rust-sdk use). */
export const DEFAULT_PASSPHRASE_ITERATIONS = 500_000;
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

/** Passphrase parameters for a new key: a fresh 32-character salt. */
export function newPassphraseInfo(iterations: number = DEFAULT_PASSPHRASE_ITERATIONS): PassphraseInfo {
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_PASSPHRASE_ITERATIONS) {
    throw new SecretStorageError("BAD_ARGUMENT", "iterations out of range");
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
