// The operations every crypto benchmark measures, by name, so that Keyroom's back ends and libolm
// report the same rows.
export const CRYPTO_OPS = {
  megolmEncrypt: "Megolm encrypt (200 B)",
  megolmDecrypt: "Megolm decrypt (200 B)",
  megolmDecryptFar: "Megolm decrypt index 100 000 (fresh session at 0)",
  accountCreate: "Olm account + 50 one-time keys",
  olmOutbound: "Olm outbound session + first message",
  olmInbound: "Olm inbound session from pre-key message",
} as const;

export type CryptoOp = keyof typeof CRYPTO_OPS;

/** What one bench process reports. */
export interface CryptoBenchReport {
  implementation: string;
  /** Operations per second for each op. */
  rates: Partial<Record<CryptoOp, number>>;
  /**
   * The "primitive floor": operations per second if an op cost nothing but the primitives it must
   * call (measured in the same process). Only Keyroom reports it.
   */
  floors?: Partial<Record<CryptoOp, number>>;
}

/** 200 bytes of message text. */
export const MESSAGE_200 = "x".repeat(200);

/** The Megolm index of the far-decryption row. */
export const FAR_INDEX = 100_000;
