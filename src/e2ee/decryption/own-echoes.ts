/**
 * Our own room events coming back: every event a client sends in an encrypted room returns in
 * its next sync response, and decrypting it (an Ed25519 signature check, key derivation, the MAC
 * and AES) was half of all Megolm decryptions of a chatting client or bot. The process that
 * encrypted it holds what that decryption would find, so it keeps, per event it encrypted until
 * that event comes back: the exact ciphertext, the plaintext, the message index and a copy of the
 * ratchet the message was encrypted with.
 *
 * Decryption uses the plaintext instead of decrypting only when the event that comes back is
 * byte-identical where it counts (algorithm, sender key, session ID, device ID, ciphertext, room)
 * and the inbound session it would be decrypted with holds,
 * at that index, the very ratchet the message was encrypted with (`holdsRatchet`, compared in
 * constant time; the session ID is the signing key). Decryption is then a function of inputs the
 * sender already has: the signature and the MAC verify, and the plaintext is the one encrypted.
 * Everything after that runs as for any event (the payload's checks, who sent it and how far it
 * is trusted, the replay record of its index), so the outcome is the one decryption gives.
 *
 * The event ID plays no part: the sync response carrying the echo often arrives before `/send`'s
 * answer (a third of a bot's replies, measured), and binding to it would not change an outcome.
 * An entry is used once, by the first event carrying its ciphertext; the same ciphertext under
 * another event ID, before or after, is decrypted in full and caught by the replay record of the
 * index, exactly as when both are decrypted (the first to arrive holds the index either way).
 *
 * Memory only: a restart decrypts its own echoes in full. Entries are removed when used; the
 * oldest go beyond `MAX_OWN_ECHOES` entries or `MAX_OWN_ECHO_BYTES` (their ratchet copies wiped).
 */
import { wipe } from "../../crypto/primitives/index.ts";

/** Sent events remembered until their echo; an echo that comes later is decrypted in full. */
export const MAX_OWN_ECHOES = 256;
/** Larger plaintexts are not kept (their echo is decrypted in full). */
export const MAX_OWN_ECHO_PLAINTEXT = 16 * 1024;
/**
 * The memory all entries may hold together, counted as `echoBytes` does: the oldest go first. A
 * few hundred chat messages fit; a burst of large events keeps fewer of them.
 */
export const MAX_OWN_ECHO_BYTES = 1024 * 1024;

/** What an entry holds, at two bytes per UTF-16 unit (the plaintext and its ciphertext) and the ratchet. */
function echoBytes(echo: OwnEcho): number {
  return 2 * (echo.plaintext.length + echo.ciphertext.length) + echo.ratchet.length;
}

export interface OwnEcho {
  readonly roomId: string;
  /** The `m.room.encrypted` content as it was handed out. */
  readonly algorithm: string;
  readonly senderKey: string;
  readonly sessionId: string;
  readonly deviceId: string;
  readonly ciphertext: string;
  /** The JSON that was encrypted (`{ type, content, room_id }`). */
  readonly plaintext: string;
  readonly messageIndex: number;
  /** The ratchet at `messageIndex` (128 bytes; wiped when the entry goes). */
  readonly ratchet: Uint8Array;
}

export class OwnEchoes {
  /** By ciphertext (unique per message); insertion order is age order. */
  readonly #byCiphertext = new Map<string, OwnEcho>();
  #bytes = 0;

  get size(): number {
    return this.#byCiphertext.size;
  }

  /** An event this process encrypted. Takes ownership of `echo.ratchet`. */
  add(echo: OwnEcho): void {
    if (echo.plaintext.length > MAX_OWN_ECHO_PLAINTEXT) {
      wipe(echo.ratchet);
      return;
    }
    this.#remove(echo.ciphertext);
    this.#byCiphertext.set(echo.ciphertext, echo);
    this.#bytes += echoBytes(echo);
    while (this.#byCiphertext.size > MAX_OWN_ECHOES || this.#bytes > MAX_OWN_ECHO_BYTES) {
      const oldest = this.#byCiphertext.keys().next();
      if (oldest.done === true) break;
      this.#remove(oldest.value);
    }
  }

  /**
   * The entry for this event when it is the echo of one we sent: same room, and the same
   * algorithm, sender key, session ID, device ID and ciphertext. The caller removes it (`take`)
   * once it used it.
   */
  match(roomId: string, content: Record<string, unknown>): OwnEcho | undefined {
    const { ciphertext } = content;
    if (typeof ciphertext !== "string") return undefined;
    const echo = this.#byCiphertext.get(ciphertext);
    if (
      echo === undefined ||
      echo.roomId !== roomId ||
      content.algorithm !== echo.algorithm ||
      content.sender_key !== echo.senderKey ||
      content.session_id !== echo.sessionId ||
      content.device_id !== echo.deviceId
    ) {
      return undefined;
    }
    return echo;
  }

  /** Removes an entry (used, or its event will not come back as sent). */
  take(echo: OwnEcho): void {
    if (this.#byCiphertext.get(echo.ciphertext) === echo) this.#remove(echo.ciphertext);
  }

  #remove(ciphertext: string): void {
    const echo = this.#byCiphertext.get(ciphertext);
    if (echo === undefined) return;
    this.#byCiphertext.delete(ciphertext);
    this.#bytes -= echoBytes(echo);
    wipe(echo.ratchet);
  }

  /** Forgets everything (the machine closes). */
  clear(): void {
    for (const echo of this.#byCiphertext.values()) wipe(echo.ratchet);
    this.#byCiphertext.clear();
    this.#bytes = 0;
  }
}
