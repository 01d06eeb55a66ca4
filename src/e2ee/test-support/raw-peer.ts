/**
 * Test support: a hostile peer that speaks Olm directly (an `Account` of its own, no machine), so
 * tests can send to-device messages no honest client would: any plaintext bytes, any payload,
 * replays of the same ciphertext, made-up sender keys. Only tests import this.
 */
import { Account, type Session } from "../../crypto/olm/index.ts";
import { encodeBase64, randomBytes, utf8Encode } from "../../crypto/primitives/index.ts";
import { OLM_ALGORITHM } from "../devices/device.ts";
import { signWithAccount } from "../signing.ts";
import type { FakeHomeserver, TestClient } from "./fake-homeserver.ts";

export interface RawToDevice {
  readonly type: string;
  readonly sender: string;
  readonly content: Record<string, unknown>;
}

export class RawOlmPeer {
  readonly account = Account.create();
  readonly userId: string;
  readonly deviceId: string;
  readonly #sessions = new Map<string, Session>();

  constructor(userId: string, deviceId: string) {
    this.userId = userId;
    this.deviceId = deviceId;
  }

  get curve25519(): string {
    return this.account.identityKeys.curve25519;
  }

  get ed25519(): string {
    return this.account.identityKeys.ed25519;
  }

  /** Publishes validly self-signed device keys (optionally claiming someone else's curve key). */
  publish(hs: FakeHomeserver, curve25519 = this.curve25519): void {
    hs.forgeDeviceKeys(
      this.userId,
      this.deviceId,
      signWithAccount(this.account, this.userId, this.deviceId, {
        user_id: this.userId,
        device_id: this.deviceId,
        algorithms: [OLM_ALGORITHM, "m.megolm.v1.aes-sha2"],
        keys: { [`curve25519:${this.deviceId}`]: curve25519, [`ed25519:${this.deviceId}`]: this.ed25519 },
      }),
    );
  }

  /** Claims a one-time key of `target` (its fallback key once they run out) and starts a session. */
  startSession(hs: FakeHomeserver, target: TestClient): Session {
    const response = hs.handle(this.userId, this.deviceId, {
      id: `claim-${encodeBase64(randomBytes(6))}`,
      type: "keys_claim",
      body: { one_time_keys: { [target.userId]: { [target.deviceId]: "signed_curve25519" } } },
    }) as { one_time_keys: Record<string, Record<string, Record<string, { key: string }>>> };
    const keys = response.one_time_keys[target.userId]?.[target.deviceId];
    const key = keys === undefined ? undefined : Object.values(keys)[0];
    if (key === undefined) throw new Error("no key to claim");
    const session = this.account.createOutboundSession(target.machine.identityKeys.curve25519, key.key);
    this.#sessions.set(target.machine.identityKeys.curve25519, session);
    return session;
  }

  session(target: TestClient, hs: FakeHomeserver): Session {
    return this.#sessions.get(target.machine.identityKeys.curve25519) ?? this.startSession(hs, target);
  }

  /** The Olm payload an honest sender would encrypt for `target`. */
  payload(target: TestClient, type: string, content: Record<string, unknown>): Record<string, unknown> {
    return {
      type,
      content,
      sender: this.userId,
      sender_device: this.deviceId,
      recipient: target.userId,
      recipient_keys: { ed25519: target.machine.identityKeys.ed25519 },
      keys: { ed25519: this.ed25519 },
    };
  }

  /** An `m.room.encrypted` to-device event carrying exactly these plaintext bytes (or JSON). */
  encrypt(
    hs: FakeHomeserver,
    target: TestClient,
    plaintext: Uint8Array | Record<string, unknown>,
    senderKey = this.curve25519,
  ): RawToDevice {
    const bytes = plaintext instanceof Uint8Array ? plaintext : utf8Encode(JSON.stringify(plaintext));
    const message = this.session(target, hs).encrypt(bytes);
    return {
      type: "m.room.encrypted",
      sender: this.userId,
      content: {
        algorithm: OLM_ALGORITHM,
        sender_key: senderKey,
        ciphertext: { [target.machine.identityKeys.curve25519]: { type: message.type, body: message.body } },
      },
    };
  }
}

/**
 * An Olm message to `to` that no session decrypts (80 random bytes as a normal message), naming
 * `sender` and `senderKey`: what a wedged session or a hostile sender looks like.
 */
export function junkOlmEvent(sender: string, senderKey: string, to: TestClient): RawToDevice {
  return {
    type: "m.room.encrypted",
    sender,
    content: {
      algorithm: OLM_ALGORITHM,
      sender_key: senderKey,
      ciphertext: { [to.machine.identityKeys.curve25519]: { type: 1, body: encodeBase64(randomBytes(80)) } },
    },
  };
}
