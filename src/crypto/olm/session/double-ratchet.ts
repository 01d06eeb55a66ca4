/**
 * The double ratchet state of one Olm session: the root key, our sending chain (absent until we
 * send after a ratchet turn) and the peer's receiving chains, newest first.
 */
import { encodeBase64, randomBytes, wipe, x25519PublicKey } from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import { bytesEqual, diffieHellman } from "../keys.ts";
import type { DecodedMessage } from "../message/message.ts";
import { MAX_VARINT_VALUE } from "../message/protobuf-varint.ts";
import { pickleArray, pickleBytes, pickleInteger, pickleObject } from "../pickle.ts";
import { advanceChainKey, deriveMessageKey } from "./chain-key.ts";
import { openMessage, type PreKeyWrapping, sealMessage } from "./message-key.ts";
import { ReceiverChain, type ReceiverChainPickle } from "./receiver-chain.ts";
import { advanceRootKey, deriveInitialKeys } from "./root-key.ts";

/**
 * Receiving chains kept per session, oldest dropped first. 5, as libolm (`MAX_RECEIVER_CHAINS` in
 * ratchet.cpp) and vodozemac (`MAX_RECEIVING_CHAINS`).
 */
export const MAX_RECEIVER_CHAINS = 5;

interface SenderChain {
  readonly ratchetSecret: Uint8Array;
  readonly ratchetPublic: Uint8Array;
  chainKey: Uint8Array;
  chainIndex: number;
}

export interface DoubleRatchetPickle {
  readonly rootKey: string;
  readonly senderChain: {
    readonly ratchetSecret: string;
    readonly ratchetPublic: string;
    readonly chainKey: string;
    readonly chainIndex: number;
  } | null;
  readonly receiverChains: readonly ReceiverChainPickle[];
}

export class DoubleRatchet {
  #rootKey: Uint8Array;
  #sender: SenderChain | null;
  #receivers: ReceiverChain[];

  private constructor(rootKey: Uint8Array, sender: SenderChain | null, receivers: ReceiverChain[]) {
    this.#rootKey = rootKey;
    this.#sender = sender;
    this.#receivers = receivers;
  }

  /** The session initiator's ratchet: R(0), and a sending chain C(0,0) under our ratchet key T(0). */
  static alice(
    sharedSecret: Uint8Array,
    ratchetSecret: Uint8Array,
    ratchetPublic: Uint8Array,
  ): DoubleRatchet {
    const { rootKey, chainKey } = deriveInitialKeys(sharedSecret);
    return new DoubleRatchet(rootKey, { ratchetSecret, ratchetPublic, chainKey, chainIndex: 0 }, []);
  }

  /** The responder's ratchet: R(0), and a receiving chain C(0,0) under the peer's ratchet key T(0). */
  static bob(sharedSecret: Uint8Array, theirRatchetKey: Uint8Array): DoubleRatchet {
    const { rootKey, chainKey } = deriveInitialKeys(sharedSecret);
    return new DoubleRatchet(rootKey, null, [new ReceiverChain(theirRatchetKey, chainKey, 0)]);
  }

  /**
   * Encrypts one message, starting a new sending chain first if the peer has ratcheted.
   * `ratchetSecret` fixes the new chain's ratchet key (known-answer tests only).
   */
  encrypt(plaintext: Uint8Array, wrap: PreKeyWrapping | null, ratchetSecret?: Uint8Array): Uint8Array {
    const sender = this.#sender ?? this.#startSenderChain(ratchetSecret ?? randomBytes(32));
    const messageKey = deriveMessageKey(sender.chainKey);
    const bytes = sealMessage(messageKey, sender.ratchetPublic, sender.chainIndex, plaintext, wrap);
    wipe(messageKey);
    const next = advanceChainKey(sender.chainKey);
    wipe(sender.chainKey);
    sender.chainKey = next;
    sender.chainIndex++;
    return bytes;
  }

  #startSenderChain(ratchetSecret: Uint8Array): SenderChain {
    const theirs = this.#receivers[0];
    // A ratchet without a sending chain was built from a received message, so it has a receiver.
    if (theirs === undefined)
      throw new OlmError("BAD_PICKLE", "ratchet has neither a sending nor a receiving chain");
    const ratchetPublic = x25519PublicKey(ratchetSecret);
    const dh = diffieHellman(ratchetSecret, theirs.ratchetKey);
    const { rootKey, chainKey } = advanceRootKey(this.#rootKey, dh);
    wipe(dh);
    wipe(this.#rootKey);
    this.#rootKey = rootKey;
    this.#sender = { ratchetSecret, ratchetPublic, chainKey, chainIndex: 0 };
    return this.#sender;
  }

  /**
   * Decrypts one decoded message. All derivations happen on temporaries; the ratchet changes
   * only once the MAC has verified and the payload has decrypted.
   */
  decrypt(message: DecodedMessage): Uint8Array {
    const chain = this.#receivers.find((c) => bytesEqual(c.ratchetKey, message.ratchetKey));
    if (chain !== undefined) {
      const lookup = chain.lookup(message.chainIndex);
      let plaintext: Uint8Array;
      try {
        plaintext = openMessage(lookup.messageKey, message);
      } catch (e) {
        ReceiverChain.discard(lookup);
        throw e;
      }
      chain.commit(lookup);
      return plaintext;
    }
    return this.#decryptOnNewChain(message);
  }

  #decryptOnNewChain(message: DecodedMessage): Uint8Array {
    const sender = this.#sender;
    // The peer only turns the ratchet after reading a message from us, i.e. after we have sent.
    if (sender === null) {
      throw new OlmError("UNKNOWN_RATCHET_KEY", "message uses a ratchet key this session cannot know yet");
    }
    const dh = diffieHellman(sender.ratchetSecret, message.ratchetKey);
    const { rootKey, chainKey } = advanceRootKey(this.#rootKey, dh);
    wipe(dh);
    const chain = new ReceiverChain(message.ratchetKey.slice(), chainKey, 0);
    let plaintext: Uint8Array;
    try {
      const lookup = chain.lookup(message.chainIndex);
      try {
        plaintext = openMessage(lookup.messageKey, message);
      } catch (e) {
        ReceiverChain.discard(lookup);
        throw e;
      }
      chain.commit(lookup);
    } catch (e) {
      wipe(rootKey);
      chain.wipe();
      throw e;
    }
    wipe(this.#rootKey);
    this.#rootKey = rootKey;
    this.#receivers.unshift(chain);
    while (this.#receivers.length > MAX_RECEIVER_CHAINS) this.#receivers.pop()?.wipe();
    // Our next message starts a new sending chain from the new root key.
    wipe(sender.ratchetSecret);
    wipe(sender.chainKey);
    this.#sender = null;
    return plaintext;
  }

  wipe(): void {
    wipe(this.#rootKey);
    if (this.#sender !== null) {
      wipe(this.#sender.ratchetSecret);
      wipe(this.#sender.chainKey);
    }
    for (const chain of this.#receivers) chain.wipe();
  }

  toPickle(): DoubleRatchetPickle {
    const s = this.#sender;
    return {
      rootKey: encodeBase64(this.#rootKey),
      senderChain:
        s === null
          ? null
          : {
              ratchetSecret: encodeBase64(s.ratchetSecret),
              ratchetPublic: encodeBase64(s.ratchetPublic),
              chainKey: encodeBase64(s.chainKey),
              chainIndex: s.chainIndex,
            },
      receiverChains: this.#receivers.map((c) => c.toPickle()),
    };
  }

  static fromPickle(value: unknown, what: string): DoubleRatchet {
    const p = pickleObject(value, what);
    const rootKey = pickleBytes(p.rootKey, 32, `${what}.rootKey`);
    let sender: SenderChain | null = null;
    if (p.senderChain !== null) {
      const s = pickleObject(p.senderChain, `${what}.senderChain`);
      sender = {
        ratchetSecret: pickleBytes(s.ratchetSecret, 32, `${what}.senderChain.ratchetSecret`),
        ratchetPublic: pickleBytes(s.ratchetPublic, 32, `${what}.senderChain.ratchetPublic`),
        chainKey: pickleBytes(s.chainKey, 32, `${what}.senderChain.chainKey`),
        chainIndex: pickleInteger(s.chainIndex, MAX_VARINT_VALUE, `${what}.senderChain.chainIndex`),
      };
    }
    const receivers = pickleArray(p.receiverChains, `${what}.receiverChains`, MAX_RECEIVER_CHAINS).map(
      (c, i) => ReceiverChain.fromPickle(c, `${what}.receiverChains[${i}]`),
    );
    if (sender === null && receivers.length === 0) {
      throw new OlmError("BAD_PICKLE", `${what} has neither a sending nor a receiving chain`);
    }
    return new DoubleRatchet(rootKey, sender, receivers);
  }
}
