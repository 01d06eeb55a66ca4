/**
 * Rehydration (MSC3814): the dehydrated device's account, opened with its key, decrypts the
 * to-device events queued for it while no device of ours was online. Its Olm sessions live in
 * memory for the rehydration only (the device is replaced afterwards), and only the room keys and
 * history-sharing bundles it received leave it: the machine imports the keys and remembers the
 * bundles (`OlmMachine.dehydration.importRoomKeys`).
 */

import type { EncryptedFile } from "../../crypto/attachments/index.ts";
import { type Account, OlmError, type Session } from "../../crypto/olm/index.ts";
import { utf8Decode } from "../../crypto/primitives/index.ts";
import { isRecord } from "../../wire/json.ts";
import { isRoomKeyBundleType, parseReceivedBundle } from "../history-sharing/bundle.ts";
import { isId } from "../limits.ts";
import { parseOlmContent, parseOlmPayload } from "../olm-sessions/payload.ts";
import { type DehydratedDeviceData, rehydrateDevice } from "./dehydrated-device.ts";

/** Olm sessions a rehydrated device keeps in memory at most (oldest dropped first). */
export const MAX_REHYDRATED_OLM_SESSIONS = 1000;
/** Sessions tried per sender key for a normal (non pre-key) message. */
const MAX_SESSIONS_TRIED = 5;

/** An `m.room_key` the dehydrated device received over Olm. */
export interface RehydratedRoomKey {
  readonly sender: string;
  /** The Curve25519 key of the device that sent it (authenticated by the Olm session). */
  readonly senderKey: string;
  /** The Ed25519 key that device claimed in the Olm payload. */
  readonly senderClaimedEd25519: string;
  /** The event content, `session_key` included: it stays inside the machine. */
  readonly content: Readonly<Record<string, unknown>>;
}

/** A history-sharing bundle (MSC4268) sent to the dehydrated device: remembered like one sent to us. */
export interface RehydratedBundle {
  readonly roomId: string;
  readonly sender: string;
  readonly senderKey: string;
  readonly file: EncryptedFile;
}

export interface RehydratedPage {
  readonly roomKeys: RehydratedRoomKey[];
  /** Bundles of rooms we were invited to while away, to import if we accept the invite. */
  readonly bundles: RehydratedBundle[];
  /** Events of the page that were not a decryptable Olm event for this device. */
  readonly dropped: number;
}

export class RehydratedDevice {
  readonly userId: string;
  readonly deviceId: string;
  readonly #account: Account;
  /** Sender key → sessions, newest first; all of them bounded together. */
  readonly #sessions = new Map<string, Session[]>();
  #sessionCount = 0;
  #wiped = false;

  private constructor(userId: string, deviceId: string, account: Account) {
    this.userId = userId;
    this.deviceId = deviceId;
    this.#account = account;
  }

  /** Opens the device's pickle. `DehydrationError`: `WRONG_KEY`, `BAD_PICKLE`, `BAD_ARGUMENT`. */
  static open(options: {
    readonly userId: string;
    readonly deviceId: string;
    readonly deviceData: DehydratedDeviceData;
    readonly key: Uint8Array;
  }): RehydratedDevice {
    const account = rehydrateDevice(options.deviceData, options.key);
    return new RehydratedDevice(options.userId, options.deviceId, account);
  }

  /** Decrypts one page of the device's events; what is not for it, or does not decrypt, is dropped. */
  receiveEvents(events: readonly unknown[]): RehydratedPage {
    if (this.#wiped) throw new Error("the rehydrated device was wiped");
    const roomKeys: RehydratedRoomKey[] = [];
    const bundles: RehydratedBundle[] = [];
    let dropped = 0;
    for (const raw of events) {
      const got = this.#receive(raw);
      if (got === undefined) dropped++;
      else if (got === null) continue;
      else if ("content" in got) roomKeys.push(got);
      else bundles.push(got);
    }
    return { roomKeys, bundles, dropped };
  }

  /** A room key or a bundle, null for another decrypted event, undefined for a dropped one. */
  #receive(raw: unknown): RehydratedRoomKey | RehydratedBundle | null | undefined {
    if (!isRecord(raw) || raw.type !== "m.room.encrypted" || !isId(raw.sender)) return undefined;
    const sender = raw.sender;
    const ours = this.#account.identityKeys;
    const parsed = parseOlmContent(raw.content, ours.curve25519);
    if (!parsed.ok || parsed.message === undefined) return undefined;
    const bytes = this.#decrypt(parsed.senderKey, parsed.message);
    if (bytes === undefined) return undefined;
    let text: string;
    try {
      text = utf8Decode(bytes);
    } catch {
      return undefined;
    }
    const payload = parseOlmPayload(text);
    if (
      payload === undefined ||
      payload.sender !== sender ||
      payload.recipient !== this.userId ||
      payload.recipient_keys.ed25519 !== ours.ed25519
    ) {
      return undefined;
    }
    // MSC3814: a dehydrated device sends nothing (the machine also drops keys from one it knows).
    if (payload.sender_device_keys?.dehydrated === true) return undefined;
    if (isRoomKeyBundleType(payload.type)) {
      const bundle = parseReceivedBundle(payload, sender, parsed.senderKey);
      return bundle === undefined ? undefined : { ...bundle, sender, senderKey: parsed.senderKey };
    }
    if (payload.type !== "m.room_key") return null;
    return {
      sender,
      senderKey: parsed.senderKey,
      senderClaimedEd25519: payload.keys.ed25519,
      content: payload.content,
    };
  }

  #decrypt(senderKey: string, message: { type: 0 | 1; body: string }): Uint8Array | undefined {
    const sessions = this.#sessions.get(senderKey) ?? [];
    if (message.type === 0) {
      for (const s of sessions) {
        if (matches(s, senderKey, message)) return tryDecrypt(s, message);
      }
      try {
        const created = this.#account.createInboundSession(senderKey, message);
        this.#add(senderKey, created.session);
        return created.plaintext;
      } catch (e) {
        if (e instanceof OlmError) return undefined;
        throw e;
      }
    }
    for (const s of sessions.slice(0, MAX_SESSIONS_TRIED)) {
      const bytes = tryDecrypt(s, message);
      if (bytes !== undefined) return bytes;
    }
    return undefined;
  }

  #add(senderKey: string, session: Session): void {
    const list = this.#sessions.get(senderKey) ?? [];
    list.unshift(session);
    this.#sessions.delete(senderKey); // re-inserted as the most recent sender
    this.#sessions.set(senderKey, list);
    this.#sessionCount++;
    while (this.#sessionCount > MAX_REHYDRATED_OLM_SESSIONS) {
      const [oldestKey, oldest] = this.#sessions.entries().next().value ?? [];
      if (oldestKey === undefined || oldest === undefined) break;
      const dropped = oldest.pop();
      dropped?.wipe();
      this.#sessionCount--;
      if (oldest.length === 0) this.#sessions.delete(oldestKey);
    }
  }

  /** Forgets every secret (the account and its sessions). */
  wipe(): void {
    if (this.#wiped) return;
    this.#wiped = true;
    for (const list of this.#sessions.values()) for (const s of list) s.wipe();
    this.#sessions.clear();
    this.#account.wipe();
  }

  toJSON(): Record<string, string> {
    return { type: "RehydratedDevice", userId: this.userId, deviceId: this.deviceId };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `RehydratedDevice(${this.userId}/${this.deviceId})`;
  }
}

function matches(session: Session, senderKey: string, message: { type: 0 | 1; body: string }): boolean {
  try {
    return session.matchesInboundSession(senderKey, message);
  } catch (e) {
    if (e instanceof OlmError) return false;
    throw e;
  }
}

function tryDecrypt(session: Session, message: { type: 0 | 1; body: string }): Uint8Array | undefined {
  try {
    return session.decrypt(message);
  } catch (e) {
    if (e instanceof OlmError) return undefined;
    throw e;
  }
}
