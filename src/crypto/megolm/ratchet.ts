/**
 * The Megolm ratchet (megolm.md "The Megolm ratchet algorithm"): four 256-bit parts R0..R3 and a
 * 32-bit counter i. Part R_j changes every 2^(8(3-j)) steps and, when it does, reseeds the faster
 * parts below it: R_{i,j} = H_j(R_{i-1,j-1}) at the boundaries, H_j(R_{i-1,j}) otherwise, where
 * H_j(A) = HMAC-SHA-256(A, j). Because of that structure, `advanceTo` reaches any later counter
 * with at most 4 × 256 hashes (jumping whole parts), instead of one step per message.
 */
import { hmacSha256Into, wipe } from "../primitives/index.ts";

export const RATCHET_PART_LENGTH = 32;
export const RATCHET_PARTS = 4;
/** 128 bytes: R0 || R1 || R2 || R3. */
export const RATCHET_LENGTH = RATCHET_PART_LENGTH * RATCHET_PARTS;
/** Counters are 32-bit; an index is an integer in [0, MAX_MESSAGE_INDEX]. */
export const MAX_MESSAGE_INDEX = 0xffff_ffff;

const SEEDS: readonly Uint8Array[] = [
  new Uint8Array([0x00]),
  new Uint8Array([0x01]),
  new Uint8Array([0x02]),
  new Uint8Array([0x03]),
];

export class Ratchet {
  /** R0..R3, owned by this object. */
  readonly bytes: Uint8Array;
  /** The index i of the message this state encrypts. */
  counter: number;
  /**
   * Views of R0..R3, made on the first step: the hashes read and write the parts in place (no
   * digest array and copy per step), and most ratchets (an import's thousands) never step here.
   */
  #parts: Uint8Array[] | undefined;

  /** Takes ownership of `bytes` (128 bytes). */
  constructor(bytes: Uint8Array, counter: number) {
    this.bytes = bytes;
    this.counter = counter;
  }

  clone(): Ratchet {
    return new Ratchet(this.bytes.slice(), this.counter);
  }

  /** Becomes a copy of `other` (reusing this object's buffer). */
  copyFrom(other: Ratchet): void {
    this.bytes.set(other.bytes);
    this.counter = other.counter;
  }

  /** Overwrites the secret state; the object must not be used afterwards. */
  destroy(): void {
    wipe(this.bytes);
  }

  /** R_to := H_to(R_from), in place (from may equal to: the key is read before the output is written). */
  #rehash(from: number, to: number): void {
    let parts = this.#parts;
    if (parts === undefined) {
      parts = [];
      for (let j = 0; j < RATCHET_PARTS; j++) {
        parts.push(this.bytes.subarray(j * RATCHET_PART_LENGTH, (j + 1) * RATCHET_PART_LENGTH));
      }
      this.#parts = parts;
    }
    hmacSha256Into(parts[to]!, parts[from]!, SEEDS[to]!);
  }

  /** One step: i := i + 1 (mod 2^32). */
  advance(): void {
    this.counter = (this.counter + 1) >>> 0;
    // h is the slowest part whose byte of the counter changed: the lower 24 bits all wrapped to
    // zero means R0 moved, and so on.
    let mask = 0x00ff_ffff;
    let h = 0;
    while (h < RATCHET_PARTS && (this.counter & mask) !== 0) {
      h++;
      mask >>>= 8;
    }
    for (let k = RATCHET_PARTS - 1; k >= h; k--) this.#rehash(h, k);
  }

  /**
   * Moves forward to `target`. For each part from the slowest, rehash it in place as many times
   * as its counter byte must grow, then reseed the faster parts from it once. A target below the
   * counter wraps around 2^32 (as libolm does); callers only ever move forward.
   */
  advanceTo(target: number): void {
    for (let j = 0; j < RATCHET_PARTS; j++) {
      const shift = (RATCHET_PARTS - 1 - j) * 8;
      let steps = ((target >>> shift) - (this.counter >>> shift)) & 0xff;
      if (steps === 0) {
        // Equal bytes at part j: nothing to do, unless the target wrapped past 2^32 (only
        // possible for R0), which needs a full turn of 256 steps.
        if (target >>> 0 < this.counter) steps = 0x100;
        else continue;
      }
      for (; steps > 1; steps--) this.#rehash(j, j);
      for (let k = RATCHET_PARTS - 1; k >= j; k--) this.#rehash(j, k);
      this.counter = (target & (0xffff_ffff << shift)) >>> 0;
    }
  }
}
