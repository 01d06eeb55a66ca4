/**
 * Olm sessions with other devices: claiming one-time keys (the server hands out the fallback key
 * when they run out), creating sessions, encrypting to-device payloads with the most recently used
 * session, decrypting and checking what arrives, and unwedging broken sessions.
 */
import { OlmError, Session } from "../../crypto/olm/index.ts";
import { encodeBase64, sha256, utf8Decode, utf8Encode } from "../../crypto/primitives/index.ts";
import type { OlmSessionRecord } from "../../store/records.ts";
import { entryOf } from "../collections.ts";
import { type DeviceRecord, OLM_ALGORITHM } from "../devices/device.ts";
import type { DeviceManager } from "../devices/manager.ts";
import { E2eeError, type ToDeviceFailureCode } from "../errors.ts";
import type { OwnDevice } from "../identity/own-device.ts";
import type { MachineContext } from "../machine-context.ts";
import { newRequestId } from "../machine-context.ts";
import { type KeysClaimRequest, type KeysClaimResponse, parseSignedKey } from "../requests.ts";
import { hasValidSignature } from "../signing.ts";
import { type OlmEncryptedContent, type OlmPayload, parseOlmContent, parseOlmPayload } from "./payload.ts";
import { RenewedSessions } from "./renewed.ts";

/** A new session is started to unwedge a device at most this often (as matrix-rust-sdk). */
export const UNWEDGE_INTERVAL_MS = 60 * 60 * 1000;
/** Sessions tried, most recently used first, on a normal message. */
export const MAX_SESSIONS_TRIED = 50;
/**
 * Sessions kept per peer device. Anyone can start sessions with our fallback key, so without a
 * bound a peer could grow our store at will; the least recently used beyond this are deleted.
 */
export const MAX_SESSIONS_PER_DEVICE = 50;
/**
 * Peer devices waiting to be unwedged at most. Anyone can send undecryptable messages from made-up
 * curve keys: the oldest entries give way, and entries whose device does not exist are dropped.
 */
export const MAX_WEDGED_DEVICES = 200;
/**
 * Peer devices whose sessions stay unpickled in memory between steps (least recently used beyond
 * this are re-read from the store when next needed): junk from random curve keys cannot grow it.
 */
export const OLM_SESSION_CACHE_SIZE = 1000;

/** Damaged Olm session records reported at most between two syncs (more are still deleted). */
export const MAX_DAMAGED_REPORTS = 100;

/** An Olm session record that failed authentication or did not unpickle: deleted, to report. */
export interface DamagedOlmSession {
  /** The peer device's Curve25519 key (the store's key for the record). */
  readonly senderKey: string;
  readonly sessionId: string;
}

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

/** What the Olm layer made of one message: its plaintext bytes, or why there are none. */
type MessageOutcome = { bytes: Uint8Array; created?: true } | { code: "NO_SESSION" | "REPLAYED" };

/** The store's name for an Olm message (its record of messages decrypted): base64 SHA-256. */
export function olmMessageHash(body: string): string {
  return encodeBase64(sha256(utf8Encode(body)));
}

export class OlmSessions {
  readonly #ctx: MachineContext;
  readonly #own: OwnDevice;
  readonly #devices: DeviceManager;
  readonly #cache = new Map<string, SessionEntry[]>();
  /**
   * Devices whose session broke, by user and curve key (another user naming the same key is
   * another entry): they get a new session and an `m.dummy`.
   */
  readonly #wedged = new Map<string, { readonly curve25519: string; readonly userId: string }>();
  readonly #claims = new Map<string, DeviceRecord[]>();
  #clock = 0;
  /** Damaged session records deleted, not yet reported (see `takeDamaged`). */
  #damaged: DamagedOlmSession[] = [];
  /** Devices that started a new session with us: our room keys go to them again (see renewed.ts). */
  readonly renewed: RenewedSessions;

  constructor(ctx: MachineContext, own: OwnDevice, devices: DeviceManager) {
    this.#ctx = ctx;
    this.#own = own;
    this.#devices = devices;
    this.renewed = new RenewedSessions(ctx);
  }

  /** Strictly increasing use stamps, so "most recently used" is never a tie. */
  #tick(): number {
    this.#clock = Math.max(this.#ctx.now(), this.#clock + 1);
    return this.#clock;
  }

  async #sessions(senderKey: string): Promise<SessionEntry[]> {
    let entries = this.#cache.get(senderKey);
    if (entries !== undefined) {
      // Most recently used last (a Map keeps insertion order): `trimCache` drops from the front.
      this.#cache.delete(senderKey);
      this.#cache.set(senderKey, entries);
    } else {
      entries = [];
      const unreadable: string[] = [];
      for (const r of await this.#ctx.store.getOlmSessions(senderKey, unreadable)) {
        try {
          entries.push({
            session: Session.fromPickle(r.pickle),
            createdAt: r.createdAt,
            lastUsedAt: r.lastUsedAt,
          });
          this.#clock = Math.max(this.#clock, r.lastUsedAt);
        } catch {
          unreadable.push(r.sessionId);
        }
      }
      // A damaged record (tampered, corrupted, or not unpickling) is treated as absent: deleted in
      // this step's save so that it does not fail again on every read, and reported. The peer is
      // unwedged onto a new session as for any session we lack.
      for (const sessionId of unreadable) {
        this.#ctx.tx.deletedOlmSessions.push({ senderKey, sessionId });
        if (this.#damaged.length < MAX_DAMAGED_REPORTS) this.#damaged.push({ senderKey, sessionId });
      }
      entries.sort((a, b) => b.lastUsedAt - a.lastUsedAt);
      this.#cache.set(senderKey, entries);
    }
    return entries;
  }

  /**
   * Bounds the cache. Called between steps only, once the step's changes are saved: an entry
   * dropped in the middle of a step could be re-read from the store behind its unsaved state.
   */
  trimCache(): void {
    for (const key of this.#cache.keys()) {
      if (this.#cache.size <= OLM_SESSION_CACHE_SIZE) return;
      this.#cache.delete(key);
    }
  }

  /**
   * The damaged session records found (and deleted) since the last call, for the sync result.
   * (A step that fails rebuilds the parts, this list too: its deletion was not saved, and the
   * next read finds and reports the record again.)
   */
  takeDamaged(): DamagedOlmSession[] {
    const out = this.#damaged;
    this.#damaged = [];
    return out;
  }

  /** How many peer devices have sessions in memory (for tests of the bound). */
  get cachedPeers(): number {
    return this.#cache.size;
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

  /**
   * Devices that need a (new) session: none yet, or wedged. Asked for every member's device at
   * every send: sessions in memory are looked up without an async call each.
   */
  async devicesNeedingSessions(devices: readonly DeviceRecord[]): Promise<DeviceRecord[]> {
    const busy = new Set<string>();
    for (const claim of this.#claims.values()) for (const d of claim) busy.add(d.curve25519Key);
    const out: DeviceRecord[] = [];
    for (const d of devices) {
      if (busy.has(d.curve25519Key) || !d.keys.algorithms.includes(OLM_ALGORITHM)) continue;
      if (this.#wedged.size > 0 && this.#wedged.has(wedgedKey(d.userId, d.curve25519Key))) {
        out.push(d);
        continue;
      }
      const cached = this.#cache.get(d.curve25519Key);
      if (cached !== undefined) {
        // Most recently used last, as `#sessions` keeps them.
        this.#cache.delete(d.curve25519Key);
        this.#cache.set(d.curve25519Key, cached);
      }
      const has = cached !== undefined ? cached.length > 0 : await this.hasSession(d.curve25519Key);
      if (!has) out.push(d);
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
  async receiveClaimResponse(id: string, parsed: KeysClaimResponse): Promise<ClaimOutcome> {
    const devices = this.#claims.get(id);
    if (devices === undefined) return { created: [], failed: [], unwedged: [] };
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
      if (!hasValidSignature(entry[1], device.userId, `ed25519:${device.deviceId}`, device.ed25519Key))
        continue;
      let session: Session;
      try {
        session = this.#own.account.createOutboundSession(device.curve25519Key, signed.key);
      } catch (e) {
        if (e instanceof OlmError) continue;
        throw e;
      }
      // The stored sessions too when memory dropped them while the claim was out: a list of the
      // new one alone would hide them (the peer's messages on them would fail until a restart).
      const entries = await this.#sessions(device.curve25519Key);
      const now = this.#tick();
      const newEntry: SessionEntry = { session, createdAt: now, lastUsedAt: now };
      entries.unshift(newEntry);
      this.#prune(device.curve25519Key, entries);
      this.#persist(device.curve25519Key, newEntry);
      created.push(device);
      if (this.#wedged.delete(wedgedKey(device.userId, device.curve25519Key))) unwedged.push(device);
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
    options: { withDeviceKeys?: boolean } = {},
  ): Promise<OlmEncryptedContent | undefined> {
    const entries = await this.#sessions(device.curve25519Key);
    const entry = entries[0];
    if (entry === undefined) return undefined;
    const ours = this.#own.identityKeys;
    const payload: OlmPayload = {
      type,
      content,
      sender: this.#ctx.userId,
      sender_device: this.#ctx.deviceId,
      recipient: device.userId,
      recipient_keys: { ed25519: device.ed25519Key },
      keys: { ed25519: ours.ed25519 },
      ...(options.withDeviceKeys === true ? { sender_device_keys: { ...this.#own.deviceKeys() } } : {}),
    };
    let plaintext: string;
    try {
      plaintext = JSON.stringify(payload);
    } catch {
      throw new E2eeError("BAD_ARGUMENT", "the event content is not serializable as JSON");
    }
    const message = entry.session.encrypt(plaintext);
    this.#touch(device.curve25519Key, entries, entry);
    return {
      algorithm: OLM_ALGORITHM,
      sender_key: ours.curve25519,
      ciphertext: { [device.curve25519Key]: { type: message.type, body: message.body } },
    };
  }

  /** Decrypts an `m.room.encrypted` to-device event from `sender` and checks its payload. */
  async decrypt(sender: string, content: unknown): Promise<OlmDecryptResult> {
    const ours = this.#own.identityKeys;
    const parsed = parseOlmContent(content, ours.curve25519);
    if (!parsed.ok) return { ok: false, code: parsed.code, senderKey: undefined };
    const { senderKey, message } = parsed;
    if (message === undefined) return { ok: false, code: "NOT_FOR_US", senderKey };
    const outcome = await this.#decryptMessage(sender, senderKey, message);
    if ("code" in outcome) return { ok: false, code: outcome.code, senderKey };
    // The ratchet worked (and advanced): whatever the bytes are, the session is fine. Bytes that are
    // not UTF-8 are a bad payload from a working session, never a reason to start a new one.
    const plaintext = decodeText(outcome.bytes);
    if (plaintext === undefined) return { ok: false, code: "BAD_PAYLOAD", senderKey };
    const payload = parseOlmPayload(plaintext);
    if (payload === undefined) return { ok: false, code: "BAD_PAYLOAD", senderKey };
    if (payload.sender !== sender) return { ok: false, code: "SENDER_MISMATCH", senderKey };
    if (payload.recipient !== this.#ctx.userId || payload.recipient_keys.ed25519 !== ours.ed25519) {
      return { ok: false, code: "RECIPIENT_MISMATCH", senderKey };
    }
    // The device the payload names, when it holds this key; else the sender's device holding it
    // (a curve key is looked up among the sender's own devices: anyone can list someone's key).
    const claimed =
      payload.sender_device === undefined
        ? undefined
        : await this.#devices.device(sender, payload.sender_device);
    const device =
      claimed?.curve25519Key === senderKey
        ? claimed
        : await this.#devices.userDeviceByCurveKey(sender, senderKey);
    if (device === undefined) {
      // A device of another user that provably owns the key (its Ed25519 key matches too).
      const other = await this.#devices.deviceByCurveKey(senderKey);
      if (other !== undefined && other.userId !== sender && other.ed25519Key === payload.keys.ed25519) {
        return { ok: false, code: "SENDER_MISMATCH", senderKey };
      }
    } else if (device.ed25519Key !== payload.keys.ed25519) {
      return { ok: false, code: "KEYS_MISMATCH", senderKey };
    }
    if (outcome.created === true && device !== undefined) await this.renewed.note(device);
    return { ok: true, event: { payload, senderKey, device } };
  }

  async #decryptMessage(
    sender: string,
    senderKey: string,
    message: { type: 0 | 1; body: string },
  ): Promise<MessageOutcome> {
    const entries = await this.#sessions(senderKey);
    if (message.type === 0) {
      // A pre-key message for a session we already have goes to that session (a replay then fails).
      for (const entry of entries) {
        if (matches(entry.session, senderKey, message)) {
          const outcome = this.#tryDecrypt(senderKey, entries, entry, message);
          if (outcome === undefined) {
            return (await this.#isKnown(senderKey, message.body))
              ? { code: "REPLAYED" }
              : { code: "NO_SESSION" };
          }
          // Remembered too: once this session is pruned, a replay of it would start it again.
          this.#remember(senderKey, message.body);
          return outcome;
        }
      }
      // A pre-key message we decrypted before, whose session has since been pruned: made on our
      // fallback key (still held), it would otherwise start a session again and be accepted twice.
      if (await this.#isKnown(senderKey, message.body)) return { code: "REPLAYED" };
      let created: { session: Session; plaintext: Uint8Array };
      try {
        created = this.#own.account.createInboundSession(senderKey, message);
      } catch (e) {
        if (!(e instanceof OlmError)) throw e;
        // The peer started a session on a key we no longer hold: that session can never work.
        if (e.code === "MISSING_ONE_TIME_KEY") this.#markWedged(sender, senderKey, entries);
        return { code: "NO_SESSION" };
      }
      const now = this.#tick();
      const entry: SessionEntry = { session: created.session, createdAt: now, lastUsedAt: now };
      entries.unshift(entry);
      this.#persist(senderKey, entry);
      this.#prune(senderKey, entries);
      this.#remember(senderKey, message.body);
      this.#own.persistAccount();
      return { bytes: created.plaintext, created: true };
    }
    for (const entry of entries.slice(0, MAX_SESSIONS_TRIED)) {
      const outcome = this.#tryDecrypt(senderKey, entries, entry, message);
      if (outcome === undefined) continue;
      // Remembered so that the same message delivered again (its message key is used up, so no
      // session decrypts it) is known for a replay, not taken for a broken session.
      this.#remember(senderKey, message.body);
      return outcome;
    }
    // Delivered again (a sync from a position the client did not save, after the step that
    // decrypted it was): ignored, the session is fine.
    if (await this.#isKnown(senderKey, message.body)) return { code: "REPLAYED" };
    this.#markWedged(sender, senderKey, entries);
    return { code: "NO_SESSION" };
  }

  /** Records that this message from `senderKey` decrypted (saved with the step's session change). */
  #remember(senderKey: string, body: string): void {
    this.#ctx.tx.olmMessageHashes.push({ senderKey, hash: olmMessageHash(body) });
  }

  /** Whether this message from `senderKey` decrypted before (in this step or a saved one). */
  async #isKnown(senderKey: string, body: string): Promise<boolean> {
    const hash = olmMessageHash(body);
    return (
      this.#ctx.tx.olmMessageHashes.some((h) => h.senderKey === senderKey && h.hash === hash) ||
      (await this.#ctx.store.isOlmMessageKnown(senderKey, hash))
    );
  }

  #tryDecrypt(
    senderKey: string,
    entries: SessionEntry[],
    entry: SessionEntry,
    message: { type: 0 | 1; body: string },
  ): { bytes: Uint8Array } | undefined {
    let bytes: Uint8Array;
    try {
      bytes = entry.session.decrypt(message);
    } catch (e) {
      if (e instanceof OlmError) return undefined;
      throw e;
    }
    this.#touch(senderKey, entries, entry);
    return { bytes };
  }

  /** Rate-limited: only if our newest session with the device is older than `UNWEDGE_INTERVAL_MS`. */
  #markWedged(sender: string, senderKey: string, entries: SessionEntry[]): void {
    const newest = Math.max(0, ...entries.map((e) => e.createdAt));
    if (this.#ctx.now() - newest < UNWEDGE_INTERVAL_MS && entries.length > 0) return;
    const key = wedgedKey(sender, senderKey);
    this.#wedged.delete(key); // re-inserted as the newest
    this.#wedged.set(key, { curve25519: senderKey, userId: sender });
    if (this.#wedged.size <= MAX_WEDGED_DEVICES) return;
    // Over the bound: the oldest entry naming no device we know gives way, so junk from made-up
    // keys cannot push out a real device waiting to be unwedged.
    let victim: string | undefined;
    for (const [k, { curve25519, userId }] of this.#wedged) {
      victim ??= k;
      const known = this.#devices.cachedUserDeviceByCurveKey(userId, curve25519);
      if (known === null || known === undefined) {
        victim = k;
        break;
      }
    }
    if (victim !== undefined) this.#wedged.delete(victim);
  }

  /** A wedged entry that names no device of its user (once their list is known) is junk. */
  forgetWedged(userId: string, curve25519: string): void {
    this.#wedged.delete(wedgedKey(userId, curve25519));
  }

  /** Devices currently waiting for a new session: curve key and the user that sent from it. */
  wedged(): { curve25519: string; userId: string }[] {
    return [...this.#wedged.values()].map(({ curve25519, userId }) => ({ curve25519, userId }));
  }
}

function wedgedKey(userId: string, curve25519: string): string {
  return JSON.stringify([userId, curve25519]);
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
