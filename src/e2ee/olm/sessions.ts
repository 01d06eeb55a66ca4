/**
 * Olm sessions with other devices: claiming one-time keys (the server hands out the fallback key
 * when they run out), creating sessions, encrypting to-device payloads with the most recently used
 * session, decrypting and checking what arrives, and unwedging broken sessions.
 */
import { OlmError, Session } from "../../crypto/olm/index.ts";
import { utf8Decode } from "../../crypto/primitives/index.ts";
import type { MachineContext } from "../context.ts";
import { newRequestId } from "../context.ts";
import { type DeviceRecord, OLM_ALGORITHM } from "../devices/device.ts";
import type { DeviceManager } from "../devices/manager.ts";
import { E2eeError, type ToDeviceFailureCode } from "../errors.ts";
import type { OwnDevice } from "../identity/own-device.ts";
import { type KeysClaimRequest, parseKeysClaimResponse, parseSignedKey } from "../requests.ts";
import { hasValidSignature } from "../signing.ts";
import type { OlmSessionRecord } from "../store/records.ts";
import { entryOf } from "../util.ts";
import { type OlmEncryptedContent, type OlmPayload, parseOlmContent, parseOlmPayload } from "./payload.ts";

/** A new session is started to unwedge a device at most this often (as matrix-rust-sdk). */
export const UNWEDGE_INTERVAL_MS = 60 * 60 * 1000;
/** Sessions tried, most recently used first, on a normal message. */
export const MAX_SESSIONS_TRIED = 50;
/**
 * Sessions kept per peer device. Anyone can start sessions with our fallback key, so without a
 * bound a peer could grow our store at will; the least recently used beyond this are deleted.
 */
export const MAX_SESSIONS_PER_DEVICE = 50;

interface SessionEntry {
  readonly session: Session;
  readonly createdAt: number;
  lastUsedAt: number;
}

/** A to-device event that decrypted and passed every check. */
export interface DecryptedOlmEvent {
  readonly payload: OlmPayload;
  /** Curve25519 key of the sending device (authenticated by the Olm session). */
  readonly senderKey: string;
  /** The sending device, if we know it (its Ed25519 key then matched `payload.keys`). */
  readonly device: DeviceRecord | undefined;
}

/** What a `/keys/claim` response gave: new sessions, devices without a usable key, unwedged devices. */
export interface ClaimOutcome {
  readonly created: DeviceRecord[];
  readonly failed: DeviceRecord[];
  readonly unwedged: DeviceRecord[];
}

export type OlmDecryptResult =
  | { ok: true; event: DecryptedOlmEvent }
  | { ok: false; code: ToDeviceFailureCode; senderKey: string | undefined };

export class OlmSessions {
  readonly #ctx: MachineContext;
  readonly #own: OwnDevice;
  readonly #devices: DeviceManager;
  readonly #cache = new Map<string, SessionEntry[]>();
  /** Curve keys of devices whose session broke: they get a new session and an `m.dummy`. */
  readonly #wedged = new Set<string>();
  readonly #claims = new Map<string, DeviceRecord[]>();
  #clock = 0;

  constructor(ctx: MachineContext, own: OwnDevice, devices: DeviceManager) {
    this.#ctx = ctx;
    this.#own = own;
    this.#devices = devices;
  }

  /** Strictly increasing use stamps, so "most recently used" is never a tie. */
  #tick(): number {
    this.#clock = Math.max(this.#ctx.now(), this.#clock + 1);
    return this.#clock;
  }

  async #sessions(senderKey: string): Promise<SessionEntry[]> {
    let entries = this.#cache.get(senderKey);
    if (entries === undefined) {
      entries = [];
      for (const r of await this.#ctx.store.getOlmSessions(senderKey)) {
        try {
          entries.push({
            session: Session.fromPickle(r.pickle),
            createdAt: r.createdAt,
            lastUsedAt: r.lastUsedAt,
          });
          this.#clock = Math.max(this.#clock, r.lastUsedAt);
        } catch {
          // An unreadable record is skipped; the peer will be unwedged onto a new session.
        }
      }
      entries.sort((a, b) => b.lastUsedAt - a.lastUsedAt);
      this.#cache.set(senderKey, entries);
    }
    return entries;
  }

  #persist(senderKey: string, entry: SessionEntry): void {
    const record: OlmSessionRecord = {
      senderKey,
      sessionId: entry.session.sessionId,
      pickle: entry.session.toPickle(),
      createdAt: entry.createdAt,
      lastUsedAt: entry.lastUsedAt,
    };
    this.#ctx.tx.olmSessions.push(record);
  }

  #touch(senderKey: string, entries: SessionEntry[], entry: SessionEntry): void {
    entry.lastUsedAt = this.#tick();
    entries.sort((a, b) => b.lastUsedAt - a.lastUsedAt);
    this.#persist(senderKey, entry);
  }

  #prune(senderKey: string, entries: SessionEntry[]): void {
    // `entries` is sorted most recently used first.
    for (const dropped of entries.splice(MAX_SESSIONS_PER_DEVICE)) {
      this.#ctx.tx.deletedOlmSessions.push({ senderKey, sessionId: dropped.session.sessionId });
    }
  }

  async hasSession(curve25519: string): Promise<boolean> {
    return (await this.#sessions(curve25519)).length > 0;
  }

  /** Devices that need a (new) session: none yet, or wedged. */
  async devicesNeedingSessions(devices: readonly DeviceRecord[]): Promise<DeviceRecord[]> {
    const busy = new Set<string>();
    for (const claim of this.#claims.values()) for (const d of claim) busy.add(d.curve25519);
    const out: DeviceRecord[] = [];
    for (const d of devices) {
      if (busy.has(d.curve25519) || !d.algorithms.includes(OLM_ALGORITHM)) continue;
      if (this.#wedged.has(d.curve25519) || !(await this.hasSession(d.curve25519))) out.push(d);
    }
    return out;
  }

  /** A `/keys/claim` for these devices, or undefined if none is needed. */
  claimRequest(devices: readonly DeviceRecord[]): KeysClaimRequest | undefined {
    if (devices.length === 0) return undefined;
    const id = newRequestId();
    this.#claims.set(id, [...devices]);
    const oneTimeKeys: Record<string, Record<string, string>> = {};
    for (const d of devices) entryOf(oneTimeKeys, d.userId)[d.deviceId] = "signed_curve25519";
    return { id, type: "keys_claim", body: { one_time_keys: oneTimeKeys } };
  }

  inFlightClaims(): KeysClaimRequest[] {
    return [...this.#claims].map(([id, devices]) => {
      const oneTimeKeys: Record<string, Record<string, string>> = {};
      for (const d of devices) entryOf(oneTimeKeys, d.userId)[d.deviceId] = "signed_curve25519";
      return { id, type: "keys_claim", body: { one_time_keys: oneTimeKeys } };
    });
  }

  hasClaim(id: string): boolean {
    return this.#claims.has(id);
  }

  /**
   * Creates sessions from a claim response. Each key must be signed by the device it was claimed
   * for. Returns the devices that were wedged and now have a fresh session (they get `m.dummy`).
   */
  receiveClaimResponse(id: string, response: unknown): ClaimOutcome {
    const devices = this.#claims.get(id);
    if (devices === undefined) return { created: [], failed: [], unwedged: [] };
    const parsed = parseKeysClaimResponse(response);
    this.#claims.delete(id);
    const unwedged: DeviceRecord[] = [];
    const created: DeviceRecord[] = [];
    for (const device of devices) {
      const keys = parsed.one_time_keys[device.userId]?.[device.deviceId];
      if (keys === undefined) continue;
      const entry = Object.entries(keys).find(([keyId]) => keyId.startsWith("signed_curve25519:"));
      if (entry === undefined) continue;
      const signed = parseSignedKey(entry[1]);
      if (signed === undefined) continue;
      if (!hasValidSignature(entry[1], device.userId, `ed25519:${device.deviceId}`, device.ed25519)) continue;
      let session: Session;
      try {
        session = this.#own.account.createOutboundSession(device.curve25519, signed.key);
      } catch (e) {
        if (e instanceof OlmError) continue;
        throw e;
      }
      const now = this.#tick();
      const newEntry: SessionEntry = { session, createdAt: now, lastUsedAt: now };
      const cached = this.#cache.get(device.curve25519);
      if (cached !== undefined) {
        cached.unshift(newEntry);
        this.#prune(device.curve25519, cached);
      } else this.#cache.set(device.curve25519, [newEntry]);
      this.#persist(device.curve25519, newEntry);
      created.push(device);
      if (this.#wedged.delete(device.curve25519)) unwedged.push(device);
    }
    return { created, failed: devices.filter((d) => !created.includes(d)), unwedged };
  }

  /**
   * Encrypts one event for one device with its most recently used session, or returns undefined if
   * we have no session with it.
   */
  async encrypt(
    device: DeviceRecord,
    type: string,
    content: Record<string, unknown>,
  ): Promise<OlmEncryptedContent | undefined> {
    const entries = await this.#sessions(device.curve25519);
    const entry = entries[0];
    if (entry === undefined) return undefined;
    const ours = this.#own.identityKeys;
    const payload: OlmPayload = {
      type,
      content,
      sender: this.#ctx.userId,
      sender_device: this.#ctx.deviceId,
      recipient: device.userId,
      recipient_keys: { ed25519: device.ed25519 },
      keys: { ed25519: ours.ed25519 },
    };
    let plaintext: string;
    try {
      plaintext = JSON.stringify(payload);
    } catch {
      throw new E2eeError("BAD_ARGUMENT", "the event content is not serializable as JSON");
    }
    const message = entry.session.encrypt(plaintext);
    this.#touch(device.curve25519, entries, entry);
    return {
      algorithm: OLM_ALGORITHM,
      sender_key: ours.curve25519,
      ciphertext: { [device.curve25519]: { type: message.type, body: message.body } },
    };
  }

  /** Decrypts an `m.room.encrypted` to-device event from `sender` and checks its payload. */
  async decrypt(sender: string, content: unknown): Promise<OlmDecryptResult> {
    const ours = this.#own.identityKeys;
    const parsed = parseOlmContent(content, ours.curve25519);
    if (!parsed.ok) return { ok: false, code: parsed.code, senderKey: undefined };
    const { senderKey, message } = parsed;
    if (message === undefined) return { ok: false, code: "NOT_FOR_US", senderKey };
    const plaintext = await this.#decryptMessage(senderKey, message);
    if (plaintext === undefined) return { ok: false, code: "NO_SESSION", senderKey };

    const payload = parseOlmPayload(plaintext);
    if (payload === undefined) return { ok: false, code: "BAD_PAYLOAD", senderKey };
    if (payload.sender !== sender) return { ok: false, code: "SENDER_MISMATCH", senderKey };
    if (payload.recipient !== this.#ctx.userId || payload.recipient_keys.ed25519 !== ours.ed25519) {
      return { ok: false, code: "RECIPIENT_MISMATCH", senderKey };
    }
    // The device the payload names, when it holds this key; else whichever device lists the key.
    const claimed =
      payload.sender_device === undefined
        ? undefined
        : await this.#devices.device(sender, payload.sender_device);
    const device =
      claimed?.curve25519 === senderKey ? claimed : await this.#devices.deviceByCurveKey(senderKey);
    if (device !== undefined) {
      if (device.userId !== sender) return { ok: false, code: "SENDER_MISMATCH", senderKey };
      if (device.ed25519 !== payload.keys.ed25519) return { ok: false, code: "KEYS_MISMATCH", senderKey };
    }
    return { ok: true, event: { payload, senderKey, device } };
  }

  async #decryptMessage(
    senderKey: string,
    message: { type: 0 | 1; body: string },
  ): Promise<string | undefined> {
    const entries = await this.#sessions(senderKey);
    if (message.type === 0) {
      // A pre-key message for a session we already have goes to that session (a replay then fails).
      for (const entry of entries) {
        if (matches(entry.session, senderKey, message))
          return this.#tryDecrypt(senderKey, entries, entry, message);
      }
      let created: { session: Session; plaintext: Uint8Array };
      try {
        created = this.#own.account.createInboundSession(senderKey, message);
      } catch (e) {
        if (!(e instanceof OlmError)) throw e;
        // The peer started a session on a key we no longer hold: that session can never work.
        if (e.code === "MISSING_ONE_TIME_KEY") this.#markWedged(senderKey, entries);
        return undefined;
      }
      const now = this.#tick();
      const entry: SessionEntry = { session: created.session, createdAt: now, lastUsedAt: now };
      entries.unshift(entry);
      this.#persist(senderKey, entry);
      this.#prune(senderKey, entries);
      this.#own.persistAccount();
      return decodeText(created.plaintext);
    }
    for (const entry of entries.slice(0, MAX_SESSIONS_TRIED)) {
      const text = this.#tryDecrypt(senderKey, entries, entry, message);
      if (text !== undefined) return text;
    }
    this.#markWedged(senderKey, entries);
    return undefined;
  }

  #tryDecrypt(
    senderKey: string,
    entries: SessionEntry[],
    entry: SessionEntry,
    message: { type: 0 | 1; body: string },
  ): string | undefined {
    let bytes: Uint8Array;
    try {
      bytes = entry.session.decrypt(message);
    } catch (e) {
      if (e instanceof OlmError) return undefined;
      throw e;
    }
    this.#touch(senderKey, entries, entry);
    return decodeText(bytes);
  }

  /** Rate-limited: only if our newest session with the device is older than `UNWEDGE_INTERVAL_MS`. */
  #markWedged(senderKey: string, entries: SessionEntry[]): void {
    const newest = Math.max(0, ...entries.map((e) => e.createdAt));
    if (this.#ctx.now() - newest >= UNWEDGE_INTERVAL_MS || entries.length === 0) this.#wedged.add(senderKey);
  }

  /** Curve keys currently waiting for a new session. */
  wedgedKeys(): string[] {
    return [...this.#wedged];
  }
}

/** Whether a pre-key message belongs to `session`; a malformed message belongs to none. */
function matches(session: Session, senderKey: string, message: { type: 0 | 1; body: string }): boolean {
  try {
    return session.matchesInboundSession(senderKey, message);
  } catch (e) {
    if (e instanceof OlmError) return false;
    throw e;
  }
}

function decodeText(bytes: Uint8Array): string | undefined {
  try {
    return utf8Decode(bytes);
  } catch {
    return undefined;
  }
}
