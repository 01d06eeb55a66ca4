/**
 * One receiving chain of the double ratchet: the peer's ratchet key T(i), our copy of its chain
 * key C(i,j), and the message keys we skipped over (for out-of-order delivery).
 */
import { encodeBase64, wipe } from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import { MAX_VARINT_VALUE } from "../message/protobuf-varint.ts";
import {
  badPickle,
  type PickleObject,
  pickleArray,
  pickleBytes,
  pickleInteger,
  pickleObject,
} from "../pickle.ts";
import { advanceChainKey, deriveMessageKey } from "./chain-key.ts";

/**
 * Furthest a message may jump ahead of the chain: each step costs two HMACs. 2000, as libolm
 * (`MAX_MESSAGE_GAP` in ratchet.cpp) and vodozemac (`receiver_chain.rs`).
 */
export const MAX_MESSAGE_GAP = 2000;

/**
 * Skipped message keys kept per receiving chain, oldest dropped first. 40, as vodozemac
 * (`MAX_MESSAGE_KEYS` in `receiver_chain.rs`); libolm keeps 40 across all chains.
 */
export const MAX_SKIPPED_MESSAGE_KEYS = 40;

export interface SkippedMessageKey {
  readonly index: number;
  readonly key: Uint8Array;
}

/** The outcome of looking up a message key, to be committed only once decryption succeeds. */
export interface MessageKeyLookup {
  readonly messageKey: Uint8Array;
  /** Position in `skipped` when the key was a stored skipped key, otherwise -1. */
  readonly skippedPosition: number;
  readonly nextChainKey: Uint8Array | null;
  readonly nextIndex: number;
  readonly newlySkipped: readonly SkippedMessageKey[];
}

export interface ReceiverChainPickle {
  readonly ratchetKey: string;
  readonly chainKey: string;
  readonly chainIndex: number;
  readonly skippedKeys: readonly { readonly index: number; readonly key: string }[];
}

export class ReceiverChain {
  readonly ratchetKey: Uint8Array;
  #chainKey: Uint8Array;
  #chainIndex: number;
  #skipped: SkippedMessageKey[];

  constructor(
    ratchetKey: Uint8Array,
    chainKey: Uint8Array,
    chainIndex: number,
    skipped: SkippedMessageKey[] = [],
  ) {
    this.ratchetKey = ratchetKey;
    this.#chainKey = chainKey;
    this.#chainIndex = chainIndex;
    this.#skipped = skipped;
  }

  get chainIndex(): number {
    return this.#chainIndex;
  }

  get skippedKeyCount(): number {
    return this.#skipped.length;
  }

  /**
   * Finds (or derives, without storing) the message key for `index`. Throws
   * `MESSAGE_INDEX_TOO_FAR` beyond `MAX_MESSAGE_GAP` and `BAD_MESSAGE_KEY_ID` for an index whose
   * key was used or dropped.
   */
  lookup(index: number): MessageKeyLookup {
    if (index < this.#chainIndex) {
      const position = this.#skipped.findIndex((k) => k.index === index);
      const found = this.#skipped[position];
      if (found === undefined) {
        throw new OlmError("BAD_MESSAGE_KEY_ID", "message key for this index was already used or dropped");
      }
      return {
        messageKey: found.key,
        skippedPosition: position,
        nextChainKey: null,
        nextIndex: 0,
        newlySkipped: [],
      };
    }
    if (index - this.#chainIndex > MAX_MESSAGE_GAP) {
      throw new OlmError("MESSAGE_INDEX_TOO_FAR", `message is more than ${MAX_MESSAGE_GAP} messages ahead`);
    }
    let chainKey = this.#chainKey;
    const newlySkipped: SkippedMessageKey[] = [];
    for (let i = this.#chainIndex; i < index; i++) {
      // Only the keys that would survive in the bounded store are worth deriving.
      if (index - i <= MAX_SKIPPED_MESSAGE_KEYS)
        newlySkipped.push({ index: i, key: deriveMessageKey(chainKey) });
      const next = advanceChainKey(chainKey);
      if (chainKey !== this.#chainKey) wipe(chainKey);
      chainKey = next;
    }
    const messageKey = deriveMessageKey(chainKey);
    const nextChainKey = advanceChainKey(chainKey);
    if (chainKey !== this.#chainKey) wipe(chainKey);
    return { messageKey, skippedPosition: -1, nextChainKey, nextIndex: index + 1, newlySkipped };
  }

  /** Applies a successful lookup: consumes the skipped key or moves the chain forward. */
  commit(lookup: MessageKeyLookup): void {
    if (lookup.skippedPosition >= 0) {
      const [used] = this.#skipped.splice(lookup.skippedPosition, 1);
      if (used !== undefined) wipe(used.key);
      return;
    }
    if (lookup.nextChainKey === null) return;
    wipe(this.#chainKey);
    this.#chainKey = lookup.nextChainKey;
    this.#chainIndex = lookup.nextIndex;
    wipe(lookup.messageKey);
    for (const key of lookup.newlySkipped) {
      if (this.#skipped.length >= MAX_SKIPPED_MESSAGE_KEYS) {
        const dropped = this.#skipped.shift();
        if (dropped !== undefined) wipe(dropped.key);
      }
      this.#skipped.push(key);
    }
  }

  /** Discards a lookup that was not committed. */
  static discard(lookup: MessageKeyLookup): void {
    if (lookup.skippedPosition >= 0) return;
    wipe(lookup.messageKey);
    if (lookup.nextChainKey !== null) wipe(lookup.nextChainKey);
    for (const key of lookup.newlySkipped) wipe(key.key);
  }

  wipe(): void {
    wipe(this.#chainKey);
    for (const key of this.#skipped) wipe(key.key);
    this.#skipped = [];
  }

  toPickle(): ReceiverChainPickle {
    return {
      ratchetKey: encodeBase64(this.ratchetKey),
      chainKey: encodeBase64(this.#chainKey),
      chainIndex: this.#chainIndex,
      skippedKeys: this.#skipped.map((k) => ({ index: k.index, key: encodeBase64(k.key) })),
    };
  }

  static fromPickle(value: unknown, what: string): ReceiverChain {
    const p: PickleObject = pickleObject(value, what);
    const chainIndex = pickleInteger(p.chainIndex, MAX_VARINT_VALUE + 1, `${what}.chainIndex`);
    const skipped = pickleArray(p.skippedKeys, `${what}.skippedKeys`, MAX_SKIPPED_MESSAGE_KEYS).map(
      (entry, i) => {
        const k = pickleObject(entry, `${what}.skippedKeys[${i}]`);
        const index = pickleInteger(k.index, MAX_VARINT_VALUE, `${what}.skippedKeys[${i}].index`);
        if (index >= chainIndex) throw badPickle(`${what}.skippedKeys[${i}].index`);
        return { index, key: pickleBytes(k.key, 32, `${what}.skippedKeys[${i}].key`) };
      },
    );
    return new ReceiverChain(
      pickleBytes(p.ratchetKey, 32, `${what}.ratchetKey`),
      pickleBytes(p.chainKey, 32, `${what}.chainKey`),
      chainIndex,
      skipped,
    );
  }
}
