// Test helpers: Megolm messages a sender's keys can make but its encrypt() never does.
import {
  decodeBase64,
  ed25519PublicKey,
  ed25519Sign,
  encodeBase64,
  hmacSha256,
} from "../../primitives/index.ts";
import { deriveMessageKeys } from "../cipher.ts";
import { encodeMegolmMessage } from "../message.ts";
import { OutboundGroupSession } from "../outbound.ts";
import { Ratchet } from "../ratchet.ts";

/** Builds a correctly signed message at `index` from the sender's pickle, with chosen bytes. */
export function forge(
  sender: OutboundGroupSession,
  index: number,
  ciphertext: (keys: ReturnType<typeof deriveMessageKeys>) => Uint8Array,
  breakMac = false,
): string {
  const p = sender.toPickle();
  const ratchet = new Ratchet(decodeBase64(p.ratchet), p.messageIndex);
  ratchet.advanceTo(index);
  const keys = deriveMessageKeys(ratchet.bytes);
  const { bytes, macOffset } = encodeMegolmMessage(index, ciphertext(keys));
  const mac = hmacSha256(keys.macKey, bytes.subarray(0, macOffset));
  if (breakMac) mac[0]! ^= 1;
  bytes.set(mac.subarray(0, 8), macOffset);
  const seed = decodeBase64(p.signingSeed);
  const secret = new Uint8Array([...seed, ...ed25519PublicKey(seed)]);
  bytes.set(ed25519Sign(secret, bytes.subarray(0, macOffset + 8)), macOffset + 8);
  return encodeBase64(bytes);
}

/** The same sender moved forward to `index` (through its pickle). */
export function senderAt(sender: OutboundGroupSession, index: number): OutboundGroupSession {
  const p = sender.toPickle();
  const r = new Ratchet(decodeBase64(p.ratchet), p.messageIndex);
  r.advanceTo(index);
  return OutboundGroupSession.fromPickle({ ...p, ratchet: encodeBase64(r.bytes), messageIndex: index });
}
