// The other devices of the benchmark: plain Olm accounts (Keyroom's primitives layer, not the machine
// under test) that publish signed device keys and one-time keys, send Olm-encrypted room keys and
// Megolm room events. Building them is setup, never timed.
import { signJson } from "../../src/crypto/json/index.ts";
import { OutboundGroupSession } from "../../src/crypto/megolm/index.ts";
import type { OlmMessage } from "../../src/crypto/olm/index.ts";
import { Account } from "../../src/crypto/olm/index.ts";
import type { DeviceKeysJson, SignedKeyJson } from "../../src/e2ee/requests.ts";

export const OLM = "m.olm.v1.curve25519-aes-sha2";
export const MEGOLM = "m.megolm.v1.aes-sha2";

/** A to-device event as `/sync` delivers it. */
export interface ToDeviceEventJson {
  type: string;
  sender: string;
  content: Record<string, unknown>;
}

/** A room event as `/sync` delivers it (with `room_id`, as matrix-rust-sdk wants it). */
export interface RoomEventJson {
  event_id: string;
  sender: string;
  type: string;
  room_id: string;
  origin_server_ts: number;
  content: Record<string, unknown>;
}

/** The identity of the device under test that a fake device sends to. */
export interface Recipient {
  userId: string;
  curve25519: string;
  ed25519: string;
}

export class FakeDevice {
  readonly account = Account.create();
  readonly #rooms = new Map<string, OutboundGroupSession>();
  #eventCounter = 0;

  constructor(
    readonly userId: string,
    readonly deviceId: string,
  ) {}

  get curve25519(): string {
    return this.account.identityKeys.curve25519;
  }

  get ed25519(): string {
    return this.account.identityKeys.ed25519;
  }

  #sign<T extends Record<string, unknown>>(
    object: T,
  ): T & { signatures: Record<string, Record<string, string>> } {
    return signJson(object, this.userId, `ed25519:${this.deviceId}`, (m) => this.account.sign(m));
  }

  deviceKeys(): DeviceKeysJson {
    return this.#sign({
      user_id: this.userId,
      device_id: this.deviceId,
      algorithms: [OLM, MEGOLM],
      keys: { [`curve25519:${this.deviceId}`]: this.curve25519, [`ed25519:${this.deviceId}`]: this.ed25519 },
    });
  }

  /** `count` signed one-time keys, as a keys/upload would carry them. */
  oneTimeKeys(count: number): Record<string, SignedKeyJson> {
    this.account.generateOneTimeKeys(count);
    const out: Record<string, SignedKeyJson> = {};
    for (const [id, key] of Object.entries(this.account.oneTimeKeys())) {
      out[`signed_curve25519:${id}`] = this.#sign({ key });
    }
    this.account.markKeysAsPublished();
    return out;
  }

  /** The Olm-encrypted `m.room_key` for `roomId` (a new Megolm session), over a new Olm session. */
  roomKeyTo(to: Recipient, oneTimeKey: string, roomId: string): ToDeviceEventJson {
    const session = this.#roomSession(roomId);
    const payload = {
      type: "m.room_key",
      content: {
        algorithm: MEGOLM,
        room_id: roomId,
        session_id: session.sessionId,
        session_key: session.sessionKey(),
      },
      sender: this.userId,
      sender_device: this.deviceId,
      recipient: to.userId,
      recipient_keys: { ed25519: to.ed25519 },
      keys: { ed25519: this.ed25519 },
    };
    const olm = this.account.createOutboundSession(to.curve25519, oneTimeKey);
    const message: OlmMessage = olm.encrypt(JSON.stringify(payload));
    return {
      type: "m.room.encrypted",
      sender: this.userId,
      content: {
        algorithm: OLM,
        sender_key: this.curve25519,
        ciphertext: { [to.curve25519]: { type: message.type, body: message.body } },
      },
    };
  }

  /** The next Megolm room event of this device in `roomId` (its session must have been shared). */
  roomEvent(roomId: string, body: string): RoomEventJson {
    const session = this.#roomSession(roomId);
    const ciphertext = session.encrypt(
      JSON.stringify({ type: "m.room.message", content: { msgtype: "m.text", body }, room_id: roomId }),
    );
    this.#eventCounter++;
    return {
      event_id: `$${this.deviceId}-${this.#eventCounter}-${this.userId.slice(1, this.userId.indexOf(":"))}`,
      sender: this.userId,
      type: "m.room.encrypted",
      room_id: roomId,
      origin_server_ts: 1_700_000_000_000 + this.#eventCounter,
      content: {
        algorithm: MEGOLM,
        sender_key: this.curve25519,
        ciphertext,
        session_id: session.sessionId,
        device_id: this.deviceId,
      },
    };
  }

  #roomSession(roomId: string): OutboundGroupSession {
    let session = this.#rooms.get(roomId);
    if (session === undefined) {
      session = OutboundGroupSession.create();
      this.#rooms.set(roomId, session);
    }
    return session;
  }
}

/** `users` users with `perUser` devices each, in a stable order. */
export function makeFakeDevices(users: number, perUser: number): FakeDevice[] {
  const out: FakeDevice[] = [];
  for (let u = 0; u < users; u++) {
    for (let d = 0; d < perUser; d++) out.push(new FakeDevice(`@member${u}:bench.test`, `DEV${d}`));
  }
  return out;
}
