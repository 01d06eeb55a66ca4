/**
 * Symmetric ratchet step (spec: "Advancing the chain key", "Creating a message key"):
 * C(i,j+1) = HMAC-SHA-256(C(i,j), 0x02) and M(i,j) = HMAC-SHA-256(C(i,j), 0x01).
 */
import { hmacSha256 } from "../../primitives/index.ts";

const MESSAGE_KEY_SEED = new Uint8Array([0x01]);
const CHAIN_KEY_SEED = new Uint8Array([0x02]);

/** The next chain key C(i,j+1). */
export function advanceChainKey(chainKey: Uint8Array): Uint8Array {
  return hmacSha256(chainKey, CHAIN_KEY_SEED);
}

/** The message key M(i,j) for the message sent with chain key C(i,j). */
export function deriveMessageKey(chainKey: Uint8Array): Uint8Array {
  return hmacSha256(chainKey, MESSAGE_KEY_SEED);
}
