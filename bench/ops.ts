// The operations every crypto benchmark measures, by name, so that Keyroom and libolm report the
// same rows.
import type { MachineInfo, Spread } from "./stats.ts";

export const CRYPTO_OPS = {
  megolmEncrypt: "Megolm encrypt (200 B)",
  megolmDecrypt: "Megolm decrypt (200 B)",
  megolmDecryptFar: "Megolm decrypt index 100 000 (fresh session at 0)",
  accountCreate: "Olm account + 50 one-time keys",
  olmOutbound: "Olm outbound session + first message",
  olmInbound: "Olm inbound session from pre-key message",
} as const;

export type CryptoOp = keyof typeof CRYPTO_OPS;

/** One operation per call; the return value is kept alive by the caller. */
export type OpSet = Record<CryptoOp, () => unknown>;

/** One operation of the alternating comparison, Keyroom beside libolm in one process. */
export interface CryptoOpResult {
  /** Operations per CPU second over each repetition (median, spread). */
  keyroom: Spread;
  libolm: Spread;
  /** Per repetition: Keyroom's rate over libolm's. */
  ratio: Spread;
  /** The same on wall-clock rates. */
  wallRatio: Spread;
  /** The first (warm-up) round alone, operations per CPU second. */
  cold: { keyroom: number; libolm: number };
}

/** What one comparison process reports. */
export interface CryptoBenchReport {
  backend: string;
  machine: MachineInfo;
  reps: number;
  ops: Partial<Record<CryptoOp, CryptoOpResult>>;
  /**
   * The "primitive floor": operations per second if an op cost nothing but the primitives it must
   * call (measured in the same process).
   */
  floors?: Partial<Record<CryptoOp, number>>;
}

/** 200 bytes of message text. */
export const MESSAGE_200 = "x".repeat(200);

/** The Megolm index of the far-decryption row. */
export const FAR_INDEX = 100_000;
