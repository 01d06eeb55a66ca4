// Deterministic randomness for the vector generators: libolm's wasm build draws every random byte
// through Node's `crypto.randomBytes`, looked up at call time, so replacing it with a queue of fixed
// bytes makes each libolm call deterministic. Importing this module installs the queue.
import { createHash } from "node:crypto";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const nodeCrypto = require("node:crypto") as { randomBytes: (n: number) => Buffer };

let queued: Buffer = Buffer.alloc(0);
let onDemand: ((n: number) => void) | undefined;
nodeCrypto.randomBytes = (n: number): Buffer => {
  if (n === 0) return Buffer.alloc(0);
  if (queued.length === 0 && onDemand !== undefined) onDemand(n);
  if (queued.length !== n) throw new Error(`libolm asked for ${n} random bytes, ${queued.length} queued`);
  const out = queued;
  queued = Buffer.alloc(0);
  return out;
};

/** Deterministic "random" bytes: SHA-256 of a label and counter, concatenated. */
export function fixedBytes(label: string, length: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; parts.length * 32 < length; i++)
    parts.push(createHash("sha256").update(`${label}/${i}`).digest());
  return Buffer.concat(parts).subarray(0, length);
}

/** The bytes libolm's next `randomBytes` call must ask for, exactly. */
export function queueRandom(bytes: Buffer): void {
  queued = bytes;
}

/** Unpadded base64, as recorded in the vector files. */
export const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64").replace(/=+$/, "");

/** Queues fixed bytes for `label` and returns them as unpadded base64 (to record beside the outputs). */
export function feed(label: string, length: number): string {
  const bytes = fixedBytes(label, length);
  queueRandom(bytes);
  return b64(bytes);
}

/**
 * For a call that may or may not draw randomness (an Olm encrypt does only when it starts a new
 * chain): whatever length libolm asks for during `fn` is fed from `label`. Returns what was fed, or "".
 */
export function feedOnDemand(label: string, fn: () => void): string {
  let fed = "";
  onDemand = (n) => {
    fed = feed(label, n);
  };
  try {
    fn();
  } finally {
    onDemand = undefined;
  }
  return fed;
}
