/**
 * Key IDs as libolm produces them: a 32-bit counter shared by one-time and fallback keys, starting
 * at 1, published as unpadded base64 of its 4 big-endian bytes ("AAAAAQ" for key 1).
 */
import { encodeBase64 } from "../../primitives/index.ts";

export const MAX_KEY_ID = 0xffff_ffff;

export function encodeKeyId(id: number): string {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, id);
  return encodeBase64(bytes);
}

/** The key ID after `id`, wrapping like libolm's uint32 counter. */
export function nextKeyId(id: number): number {
  return id === MAX_KEY_ID ? 0 : id + 1;
}

/** The key ID `count` IDs after `id`, wrapping like libolm's uint32 counter. */
export function skipKeyIds(id: number, count: number): number {
  return (id + count) % (MAX_KEY_ID + 1);
}
