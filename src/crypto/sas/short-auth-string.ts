/**
 * The spec's SAS methods (client-server API "SAS method: decimal" / "SAS method: emoji"):
 * decimal takes the first 5 bytes as three 13-bit numbers, each plus 1000; emoji takes the first
 * 6 bytes as seven 6-bit indexes into the 64-emoji table. Both read bits big-endian.
 */
import { SAS_EMOJI, type SasEmoji } from "./emoji.ts";
import { SasError } from "./errors.ts";

/** Bytes to ask `generateBytes` for, enough for both methods. */
export const SAS_BYTES_LENGTH = 6;

function need(bytes: Uint8Array, n: number): void {
  if (!(bytes instanceof Uint8Array) || bytes.length < n) {
    throw new SasError("BAD_ARGUMENT", `SAS derivation needs at least ${n} bytes`);
  }
}

/** Three numbers in [1000, 9191]. */
export function sasDecimals(bytes: Uint8Array): [number, number, number] {
  need(bytes, 5);
  const [b0, b1, b2, b3, b4] = bytes as unknown as [number, number, number, number, number];
  return [
    ((b0 << 5) | (b1 >> 3)) + 1000,
    (((b1 & 0x07) << 10) | (b2 << 2) | (b3 >> 6)) + 1000,
    (((b3 & 0x3f) << 7) | (b4 >> 1)) + 1000,
  ];
}

/** The seven emoji indexes (each in [0, 63]). */
export function sasEmojiIndexes(bytes: Uint8Array): number[] {
  need(bytes, 6);
  // 48 bits fit a double exactly; take the top 42.
  let bits = 0;
  for (let i = 0; i < 6; i++) bits = bits * 256 + bytes[i]!;
  const indexes: number[] = [];
  for (let i = 0; i < 7; i++) indexes.push(Math.floor(bits / 2 ** (42 - 6 * i)) % 64);
  return indexes;
}

/** The seven emoji to show, with their spec names. */
export function sasEmoji(bytes: Uint8Array): SasEmoji[] {
  return sasEmojiIndexes(bytes).map((i) => SAS_EMOJI[i]!);
}
