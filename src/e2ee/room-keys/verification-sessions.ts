/**
 * Megolm sessions for in-room verification: the events of a verification flow in an encrypted room
 * (`m.key.verification.*`, and the `m.room.message` request) are encrypted with a session of their
 * own, shared with the partner's devices (and ours; not dehydrated ones) whatever the room's
 * `shareWith` and `verifyDevices` say.
 *
 * Why a separate session. The spec (Key verification framework, "in-room") says encryption must not
 * hinder verification: every unverified device of the partner must be able to read the flow's
 * events, even when the room would not give it its keys. Sharing the room's own session with those
 * devices would hand them every room message from that index on, defeating the very policy that
 * left them out; sending the flow's events in the clear would downgrade an encrypted room (the
 * client never sends plaintext there). A session used for nothing but verification events, shared
 * with the partner's devices and our own, exposes only those events, which SAS and QR codes are
 * designed to survive being read by anyone (the spec even allows them unencrypted).
 *
 * The sessions live in memory only (per room and partner; a new one for each request we send, and
 * after VERIFICATION_SESSION_MAX_AGE_MS or VERIFICATION_SESSION_MAX_MESSAGES): a restart or a
 * rebuild of the machine's parts starts a new session, so a message index is never used twice
 * and there is no ratchet to save. Our own inbound copy is stored, so we read our own events.
 */
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { entryOf } from "../collections.ts";
import type { OwnEchoes } from "../decryption/own-echoes.ts";
import { type DeviceRecord, isDehydrated, MEGOLM_ALGORITHM } from "../devices/device.ts";
import type { DeviceManager } from "../devices/manager.ts";
import { E2eeError } from "../errors.ts";
import type { OwnDevice } from "../identity/own-device.ts";
import type { MachineContext } from "../machine-context.ts";
import type { OlmSessions } from "../olm-sessions/sessions.ts";
import type { ToDeviceRequest } from "../requests.ts";
import { queueEncryptedToDevice } from "../to-device-queue.ts";
import { mayReceiveKeys } from "../trust/trust.ts";
import type { InboundSessions } from "./inbound.ts";
import { SHARE_BATCH_SIZE } from "./outbound.ts";
import { addOwnInboundCopy, roomEventPlaintext, sealRoomEvent } from "./seal.ts";

/** A flow's session is replaced after this long (the spec's requests expire after 10 minutes). */
export const VERIFICATION_SESSION_MAX_AGE_MS = 10 * 60_000;
/** ...or after this many events (a flow sends fewer than ten). */
export const VERIFICATION_SESSION_MAX_MESSAGES = 100;
/** Verification sessions held at once (per room and partner); the oldest goes first. */
export const MAX_VERIFICATION_SESSIONS = 32;

interface Entry {
  readonly session: OutboundGroupSession;
  readonly createdAt: number;
  messageCount: number;
  /** Devices that hold the key (the request carrying it was sent). */
  readonly holders: Set<string>;
  /** Requests carrying the key, not yet sent: their devices. */
  readonly pending: Map<string, string[]>;
}

const deviceKey = (d: { userId: string; deviceId: string }): string => JSON.stringify([d.userId, d.deviceId]);
const entryKey = (roomId: string, partner: string): string => JSON.stringify([roomId, partner]);

export class VerificationSessions {
  readonly #ctx: MachineContext;
  readonly #own: OwnDevice;
  readonly #devices: DeviceManager;
  readonly #olm: OlmSessions;
  readonly #inbound: InboundSessions;
  readonly #echoes: OwnEchoes;
  readonly #entries = new Map<string, Entry>();

  constructor(
    ctx: MachineContext,
    own: OwnDevice,
    devices: DeviceManager,
    olm: OlmSessions,
    inbound: InboundSessions,
    echoes: OwnEchoes,
  ) {
    this.#ctx = ctx;
    this.#own = own;
    this.#devices = devices;
    this.#olm = olm;
    this.#inbound = inbound;
    this.#echoes = echoes;
  }

  /**
   * The devices the flow's session goes to: the partner's and ours, but this one, blocked ones and
   * dehydrated ones (they take no part in a flow, and MSC3814 forbids encrypting to one its owner
   * did not cross-sign).
   */
  async recipients(partner: string): Promise<DeviceRecord[]> {
    const out: DeviceRecord[] = [];
    const users = partner === this.#ctx.userId ? [partner] : [partner, this.#ctx.userId];
    for (const userId of users) {
      for (const d of await this.#devices.devicesOf(userId)) {
        if (d.userId === this.#ctx.userId && d.deviceId === this.#ctx.deviceId) continue;
        // A device the user blocked gets nothing, verification included.
        if (mayReceiveKeys(d.trust) && !isDehydrated(d)) out.push(d);
      }
    }
    return out;
  }

  /**
   * Makes sure the session for `roomId` and `partner` reaches every recipient device we have an
   * Olm session with (`fresh`: a new session first, for a new request). Returns the requests that
   * carry it and are not sent yet (`queued` finds them in the machine's queue); the event may go
   * out once they are.
   */
  async share(
    roomId: string,
    partner: string,
    fresh: boolean,
    queued: (id: string) => ToDeviceRequest | undefined,
  ): Promise<ToDeviceRequest[]> {
    const devices = await this.recipients(partner);
    const allowed = new Set(devices.map(deviceKey));
    const key = entryKey(roomId, partner);
    let entry = this.#entries.get(key);
    if (entry !== undefined) {
      const age = this.#ctx.now() - entry.createdAt;
      const holders = [...entry.holders, ...[...entry.pending.values()].flat()];
      if (
        fresh ||
        age < 0 ||
        age >= VERIFICATION_SESSION_MAX_AGE_MS ||
        entry.messageCount >= VERIFICATION_SESSION_MAX_MESSAGES ||
        holders.some((h) => !allowed.has(h))
      ) {
        this.#entries.delete(key);
        entry = undefined;
      }
    }
    if (entry === undefined) entry = await this.#create(roomId, key);
    // A share whose request left the queue unsent (dropped after failing): its devices get it again.
    for (const id of entry.pending.keys()) if (queued(id) === undefined) entry.pending.delete(id);

    const have = new Set([...entry.holders, ...[...entry.pending.values()].flat()]);
    const toShare = devices.filter((d) => !have.has(deviceKey(d)));
    if (toShare.length > 0) {
      const roomKey = {
        algorithm: MEGOLM_ALGORITHM,
        room_id: roomId,
        session_id: entry.session.sessionId,
        session_key: entry.session.sessionKey(),
      };
      let batch: { device: DeviceRecord; content: Record<string, unknown> }[] = [];
      const flush = (e: Entry): void => {
        if (batch.length === 0) return;
        const messages: ToDeviceRequest["body"]["messages"] = {};
        for (const { device, content } of batch) entryOf(messages, device.userId)[device.deviceId] = content;
        const request = queueEncryptedToDevice(this.#ctx, messages, roomId);
        e.pending.set(
          request.id,
          batch.map((b) => deviceKey(b.device)),
        );
        batch = [];
      };
      for (const device of toShare) {
        // No Olm session (its claim found no key): it cannot get the key, as for the room's own.
        const content = await this.#olm.encrypt(device, "m.room_key", roomKey);
        if (content === undefined) continue;
        batch.push({ device, content: { ...content } });
        if (batch.length >= SHARE_BATCH_SIZE) flush(entry);
      }
      flush(entry);
    }
    const requests: ToDeviceRequest[] = [];
    for (const id of entry.pending.keys()) {
      const request = queued(id);
      if (request !== undefined) requests.push(request);
    }
    return requests;
  }

  async #create(roomId: string, key: string): Promise<Entry> {
    while (this.#entries.size >= MAX_VERIFICATION_SESSIONS) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    const session = OutboundGroupSession.create();
    const entry: Entry = {
      session,
      createdAt: this.#ctx.now(),
      messageCount: 0,
      holders: new Set(),
      pending: new Map(),
    };
    this.#entries.set(key, entry);
    await addOwnInboundCopy(this.#inbound, this.#own, roomId, session, false);
    return entry;
  }

  /** A to-device request was sent: if it carried a verification session, its devices hold it. */
  markShared(requestId: string): void {
    for (const entry of this.#entries.values()) {
      const devices = entry.pending.get(requestId);
      if (devices === undefined) continue;
      entry.pending.delete(requestId);
      for (const d of devices) entry.holders.add(d);
      return;
    }
  }

  /** Encrypts one verification event with the session `share` made ready (its shares go first). */
  encrypt(
    roomId: string,
    partner: string,
    type: string,
    content: Record<string, unknown>,
  ): Record<string, unknown> {
    const entry = this.#entries.get(entryKey(roomId, partner));
    if (entry === undefined) {
      throw new E2eeError("ROOM_KEY_NOT_SHARED", "no verification session for this room and user");
    }
    const plaintext = roomEventPlaintext(roomId, type, content);
    const out = sealRoomEvent(entry.session, this.#echoes, roomId, plaintext, content, {
      senderKey: this.#own.identityKeys.curve25519,
      deviceId: this.#ctx.deviceId,
    });
    entry.messageCount++;
    return out;
  }
}
