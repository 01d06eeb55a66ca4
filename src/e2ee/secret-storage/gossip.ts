/**
 * Secret sharing in the machine (`m.secret.request` / `m.secret.send` between our own devices).
 * A device of ours that we verified interactively is asked for the secrets we lack (the
 * cross-signing keys, the backup key); requests of our own verified devices are answered over Olm;
 * requests of our own devices not verified yet wait (bounded) until they are (a trust call, or a
 * `/keys/query` that shows them cross-signed by our trusted identity). A received secret is
 * accepted only over Olm, from our own verified device, for a request we made: cross-signing keys
 * are imported here (checked against our published keys); the others are handed to the client
 * (the backup key goes to the key backup, which checks it against the server's version). A key
 * that is not the current one (a stale key another device kept) never uses up the request: the
 * right answer of another device is still taken (see `receiveSend`).
 */

import { SecretStorageError } from "../../crypto/secret-storage/errors.ts";
import type { BackupStateRecord } from "../../store/records.ts";
import { CrossSigningError } from "../cross-signing/errors.ts";
import type { CrossSigning } from "../cross-signing/manager.ts";
import type { DeviceRecord } from "../devices/device.ts";
import type { DeviceManager } from "../devices/manager.ts";
import type { MachineContext } from "../machine-context.ts";
import { newRequestId } from "../machine-context.ts";
import type { DecryptedOlmEvent, OlmSessions } from "../olm-sessions/sessions.ts";
import type { ToDeviceRequest } from "../requests.ts";
import { mayQueueReply, type QueueTag, queueToDevice, type ToDeviceQueue } from "../to-device-queue.ts";
import {
  BACKUP_SECRET,
  CROSS_SIGNING_MASTER_SECRET,
  CROSS_SIGNING_SELF_SIGNING_SECRET,
  CROSS_SIGNING_USER_SIGNING_SECRET,
  KEY_SECRETS,
  publicKeyOfSecret,
} from "./names.ts";
import {
  buildSecretRequestCancellation,
  buildSecretRequests,
  buildSecretSend,
  decideSecretRequest,
  decideSecretSend,
  type OutstandingSecretRequest,
  parseSecretRequest,
  parseSecretSend,
  rememberSecretRequest,
  SECRET_REQUEST_TYPE,
  SECRET_SEND_TYPE,
  type SecretRequest,
} from "./sharing.ts";

/** Requests of our unverified devices held until they are verified (the oldest goes first). */
export const MAX_HELD_SECRET_REQUESTS = 32;
/** Answers waiting for an Olm session with the requester (the oldest goes first). */
export const MAX_PENDING_SECRET_ANSWERS = 32;
/**
 * Backup keys handed to the client unchecked (no current version known here), remembered as
 * `[requestId, publicKey]` so that one key goes out once per request (the oldest forgotten first).
 */
export const MAX_UNCHECKED_BACKUP_KEYS = 64;
/**
 * Backup keys refused as not the key of the version in use, kept (in memory, as `ReceivedSecret`:
 * never logged) while their request is open, so that they are judged again after a version check:
 * the version in use here may be one replaced on the server since, and the refused key the new
 * version's (the oldest forgotten first).
 */
export const MAX_REFUSED_BACKUP_KEYS = 8;

/** What a newly verified own device asks for: the secrets recovery needs. */
export const GOSSIPED_SECRETS: readonly string[] = [
  CROSS_SIGNING_MASTER_SECRET,
  CROSS_SIGNING_SELF_SIGNING_SECRET,
  CROSS_SIGNING_USER_SIGNING_SECRET,
  BACKUP_SECRET,
];

const CROSS_SIGNING_FIELD: Readonly<Record<string, "master" | "selfSigning" | "userSigning">> = {
  [CROSS_SIGNING_MASTER_SECRET]: "master",
  [CROSS_SIGNING_SELF_SIGNING_SECRET]: "selfSigning",
  [CROSS_SIGNING_USER_SIGNING_SECRET]: "userSigning",
};

/** A secret another device of ours sent us, for the client to use (never logged: see toJSON). */
export class ReceivedSecret {
  readonly name: string;
  readonly value: string;
  constructor(name: string, value: string) {
    this.name = name;
    this.value = value;
  }
  toJSON(): Record<string, string> {
    return { name: this.name };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `ReceivedSecret(${this.name})`;
  }
}

/**
 * An answer to a request of ours, from our own verified device over Olm, that was refused: a
 * backup key that is not the key of the version in use (`not_current`), or not a 32-byte key
 * (`malformed`). The request stays open for our other devices. Carries no secret: safe to log.
 */
export interface RefusedSecret {
  readonly name: string;
  readonly deviceId: string;
  readonly reason: "not_current" | "malformed";
}

/** What became of an `m.secret.send`: a secret for the client, a refusal to report, or neither. */
export interface SecretSendOutcome {
  readonly secret?: ReceivedSecret;
  readonly refused?: RefusedSecret;
}

type Request = SecretRequest & { readonly action: "request" };

/** Memory-only state that outlives a rebuild of the machine's parts. */
export interface SecretGossipState {
  /** Requests we sent, by request ID (bounded by `MAX_OUTSTANDING_SECRET_REQUESTS`). */
  readonly outstanding: Map<string, OutstandingSecretRequest>;
  /** `[deviceId, requestId]` → a request of an own device not verified yet. */
  readonly held: Map<string, Request>;
  /** `[deviceId, requestId]` → an answer waiting for an Olm session. */
  readonly pending: Map<string, { readonly device: DeviceRecord; readonly request: Request }>;
  /** `[requestId, publicKey]` of backup keys handed out unchecked (see `MAX_UNCHECKED_BACKUP_KEYS`). */
  readonly unchecked: Map<string, true>;
  /** `[requestId, publicKey]` → a backup key refused as not current (see `MAX_REFUSED_BACKUP_KEYS`). */
  readonly refused: Map<string, { readonly requestId: string; readonly secret: ReceivedSecret }>;
  /** Refused keys judged again with no version known to be current: for the client, with the next sync. */
  readonly released: ReceivedSecret[];
}

export function newSecretGossipState(): SecretGossipState {
  return {
    outstanding: new Map(),
    held: new Map(),
    pending: new Map(),
    unchecked: new Map(),
    refused: new Map(),
    released: [],
  };
}

const keyOf = (deviceId: string, requestId: string): string => JSON.stringify([deviceId, requestId]);

function bounded<V>(map: Map<string, V>, key: string, value: V, limit: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > limit) {
    const oldest = map.keys().next();
    if (oldest.done === true) break;
    map.delete(oldest.value);
  }
}

export class SecretGossip {
  readonly #ctx: MachineContext;
  readonly #devices: DeviceManager;
  readonly #olm: OlmSessions;
  readonly #crossSigning: CrossSigning;
  readonly #state: SecretGossipState;
  /** The machine's saved to-device queue (see to-device-queue.ts). */
  readonly #queued: ToDeviceQueue;

  constructor(
    ctx: MachineContext,
    devices: DeviceManager,
    olm: OlmSessions,
    crossSigning: CrossSigning,
    state: SecretGossipState,
    queued: ToDeviceQueue,
  ) {
    this.#ctx = ctx;
    this.#queued = queued;
    this.#devices = devices;
    this.#olm = olm;
    this.#crossSigning = crossSigning;
    this.#state = state;
  }

  #queue(eventType: string, messages: ToDeviceRequest["body"]["messages"], tag?: QueueTag): void {
    queueToDevice(this.#ctx, { id: newRequestId(), type: "to_device", eventType, body: { messages } }, tag);
  }

  /** Whether one of our devices is verified: marked so, or cross-signed by our trusted identity. */
  async #verified(device: DeviceRecord): Promise<boolean> {
    if (device.deleted || device.trust === "blacklisted") return false;
    const identity = await this.#crossSigning.identity(device.userId);
    return this.#crossSigning.deviceTrust(device, identity).verified;
  }

  /** The value of a secret we can give away (a key secret we hold), or undefined. */
  async #value(name: string): Promise<string | undefined> {
    const field = CROSS_SIGNING_FIELD[name];
    if (field !== undefined) {
      // Only keys that are our published ones (a stale key would be refused by the requester anyway).
      const held = this.#crossSigning.status().privateKeys[field];
      return held ? this.#crossSigning.exportPrivateKeys()[field] : undefined;
    }
    if (!KEY_SECRETS.includes(name)) return undefined;
    const pending = this.#ctx.tx.secrets[name];
    const value = pending !== undefined ? (pending ?? undefined) : await this.#ctx.store.getSecret(name);
    if (name === BACKUP_SECRET && value !== undefined && !(await this.#backupKeyInUse(value)))
      return undefined;
    return value;
  }

  /**
   * Whether a backup key is not known to be stale: the key of the version in use, or held with no
   * version in use. A version replaced elsewhere and used without its key leaves the previous key
   * here; given away, it would be the requester's first answer (the others then cancelled) and
   * be refused by its backup, and held, it would keep us from asking for the current one.
   */
  async #backupKeyInUse(value: string): Promise<boolean> {
    const publicKey = (await this.#backupState())?.authData.public_key;
    if (publicKey === undefined) return true;
    try {
      return publicKeyOfSecret(BACKUP_SECRET, value) === publicKey;
    } catch (e) {
      if (e instanceof SecretStorageError) return false;
      throw e;
    }
  }

  async #backupState(): Promise<BackupStateRecord | undefined> {
    const pending = this.#ctx.tx.backupState;
    return pending !== undefined ? (pending ?? undefined) : await this.#ctx.store.getBackupState();
  }

  /**
   * A received backup key against the version in use: `current` when it is that version's key,
   * `not_current` when it is not, `malformed` when it is no key at all, `unknown` when no version
   * is known to be current here (none adopted yet, as on a new device whose first version check
   * found none it trusts; or ours was replaced or deleted on the server since).
   */
  async #judgeBackupKey(
    value: string,
  ): Promise<{ judged: "malformed" } | { judged: "current" | "not_current" | "unknown"; publicKey: string }> {
    let publicKey: string | undefined;
    try {
      publicKey = publicKeyOfSecret(BACKUP_SECRET, value);
    } catch (e) {
      if (e instanceof SecretStorageError) return { judged: "malformed" };
      throw e;
    }
    if (publicKey === undefined) return { judged: "malformed" };
    const state = await this.#backupState();
    const current = state?.stopped === undefined ? state?.authData.public_key : undefined;
    if (typeof current !== "string") return { judged: "unknown", publicKey };
    return { judged: publicKey === current ? "current" : "not_current", publicKey };
  }

  /** The secrets of {@link GOSSIPED_SECRETS} we do not hold. */
  async missing(): Promise<string[]> {
    const out: string[] = [];
    for (const name of GOSSIPED_SECRETS) if ((await this.#value(name)) === undefined) out.push(name);
    return out;
  }

  /** Asks our other devices for `names` (those not already asked for); returns the names asked. */
  request(names: readonly string[]): string[] {
    const asked = new Set([...this.#state.outstanding.values()].map((r) => r.name));
    const wanted = [...new Set(names)].filter((n) => !asked.has(n));
    if (wanted.length === 0) return [];
    const { toDevice, outstanding } = buildSecretRequests(
      { userId: this.#ctx.userId, deviceId: this.#ctx.deviceId },
      wanted,
    );
    for (const r of outstanding) rememberSecretRequest(this.#state.outstanding, r);
    for (const t of toDevice) this.#queue(t.eventType, t.messages);
    return wanted;
  }

  /**
   * One of our other devices was verified interactively: ask it (and our other devices) for what
   * we lack, and answer what it asked for while it was not verified yet.
   */
  async deviceVerified(device: DeviceRecord): Promise<void> {
    if (device.userId !== this.#ctx.userId || device.deviceId === this.#ctx.deviceId) return;
    this.request(await this.missing());
    await this.trustChanged(device);
  }

  /** A device's trust changed: answer its held requests once verified, drop them once blacklisted. */
  async trustChanged(device: DeviceRecord): Promise<void> {
    if (device.userId !== this.#ctx.userId) return;
    const verified = await this.#verified(device);
    for (const [key, request] of this.#state.held) {
      if (request.requestingDeviceId !== device.deviceId) continue;
      if (verified) {
        this.#state.held.delete(key);
        await this.#answerOrWait(device, request);
      } else if (device.trust === "blacklisted" || device.deleted) {
        this.#state.held.delete(key);
      }
    }
  }

  /**
   * Device keys or cross-signing signatures were updated (a `/keys/query` answer): a held request
   * is judged again, so that a device of ours now verified through our cross-signing (cross-signed
   * by our trusted self-signing key: verified by another device of ours, or set up with the
   * recovery key) is answered with no trust call here; a device now blacklisted or deleted has its
   * requests dropped; any other stays held.
   */
  async keysUpdated(): Promise<void> {
    const deviceIds = new Set([...this.#state.held.values()].map((r) => r.requestingDeviceId));
    for (const deviceId of deviceIds) {
      const device = await this.#devices.device(this.#ctx.userId, deviceId);
      if (device !== undefined) await this.trustChanged(device);
    }
  }

  /** An `m.secret.request` (plain or Olm-encrypted to-device). Never throws on bad input. */
  async receiveRequest(sender: string, content: Record<string, unknown>): Promise<void> {
    if (sender !== this.#ctx.userId) return;
    let request: SecretRequest;
    try {
      request = parseSecretRequest(content);
    } catch {
      return;
    }
    const key = keyOf(request.requestingDeviceId, request.requestId);
    if (request.action === "request_cancellation") {
      this.#state.held.delete(key);
      this.#state.pending.delete(key);
      return;
    }
    if (request.requestingDeviceId === this.#ctx.deviceId) return;
    const device = await this.#devices.device(sender, request.requestingDeviceId);
    const held = (await this.#value(request.name)) !== undefined;
    if (device === undefined) {
      // A new device asks before we have its keys: fetch them, and hold the request meanwhile.
      if (!held) return;
      this.#devices.markOutdated([sender]);
      bounded(this.#state.held, key, request, MAX_HELD_SECRET_REQUESTS);
      return;
    }
    const decision = decideSecretRequest(
      request,
      { userId: sender, deviceId: device.deviceId, verified: await this.#verified(device) },
      { userId: this.#ctx.userId, deviceId: this.#ctx.deviceId },
      held,
    );
    if (decision.answer) {
      await this.#answerOrWait(device, request);
    } else if (decision.reason === "unverified_device" && device.trust !== "blacklisted" && !device.deleted) {
      bounded(this.#state.held, key, request, MAX_HELD_SECRET_REQUESTS);
    }
  }

  async #answerOrWait(device: DeviceRecord, request: Request): Promise<void> {
    if (!(await this.#answer(device, request))) {
      bounded(
        this.#state.pending,
        keyOf(device.deviceId, request.requestId),
        { device, request },
        MAX_PENDING_SECRET_ANSWERS,
      );
    }
  }

  /**
   * False when there is no Olm session with the device yet; true when answered or nothing to
   * give: no such secret, an answer to this request already queued, or `MAX_QUEUED_REPLIES` queued.
   */
  async #answer(device: DeviceRecord, request: Request): Promise<boolean> {
    const reply = JSON.stringify([SECRET_SEND_TYPE, device.deviceId, request.requestId]);
    if (!mayQueueReply(this.#ctx, this.#queued, reply)) return true;
    const value = await this.#value(request.name);
    if (value === undefined) return true;
    const content = await this.#olm.encrypt(
      device,
      SECRET_SEND_TYPE,
      buildSecretSend(request.requestId, value),
    );
    if (content === undefined) return false;
    this.#queue("m.room.encrypted", { [device.userId]: { [device.deviceId]: { ...content } } }, { reply });
    return true;
  }

  /** Devices we owe a secret but have no Olm session with (the machine claims one). */
  devicesAwaitingSession(): DeviceRecord[] {
    return [...this.#state.pending.values()].map((p) => p.device);
  }

  /**
   * Retries the answers that waited for an Olm session; one for a device no longer verified
   * (blacklisted, unset, or its cross-signing gone) is dropped.
   */
  async retryPendingAnswers(): Promise<void> {
    for (const [key, { device, request }] of this.#state.pending) {
      const current = await this.#devices.device(device.userId, device.deviceId);
      if (current === undefined || !(await this.#verified(current))) {
        this.#state.pending.delete(key);
        continue;
      }
      if (await this.#answer(current, request)) this.#state.pending.delete(key);
    }
  }

  /**
   * An Olm-decrypted `m.secret.send`. Cross-signing keys are imported (only if they are our
   * published keys); any other accepted secret is returned for the client. A key that is not the
   * current one is refused and leaves the request open, so that another device's answer is taken.
   */
  async receiveSend(event: DecryptedOlmEvent): Promise<SecretSendOutcome> {
    let send: ReturnType<typeof parseSecretSend>;
    try {
      send = parseSecretSend(event.payload.content);
    } catch {
      return {};
    }
    const device = event.device;
    if (device === undefined) return {};
    const decision = decideSecretSend(
      send,
      {
        userId: device.userId,
        deviceId: device.deviceId,
        verified: await this.#verified(device),
        viaOlm: true,
      },
      this.#ctx.userId,
      this.#state.outstanding,
    );
    if (!decision.accept) return {};
    // A cross-signing key that is not our published one (a stale key another device kept) is
    // refused before the request is used up: a later, right answer to it is still taken.
    const field = CROSS_SIGNING_FIELD[decision.name];
    if (field !== undefined) {
      try {
        this.#crossSigning.importPrivateKeys({ [field]: send.secret });
      } catch (e) {
        if (e instanceof CrossSigningError) return {}; // not our published key: ignored
        throw e;
      }
    }
    // The same for the backup key, against the version in use: a key that is not its key (kept
    // from a version replaced elsewhere) is refused and the request stays open. With no version
    // known to be current here (none adopted yet, as on a new device; or ours was replaced or
    // deleted), the machine cannot tell: the key goes to the client, which checks it against the
    // server's version (`useVersion`), and the request stays open until a key is taken there
    // (`settleBackupKeyRequests`): a stale key first fails that check, and a right one after it
    // is still handed out. (A version replaced on the server since our last check, unseen yet,
    // counts as current here: a key refused as not current is kept, and judged again after the
    // version check the client makes on the refusal; see `rejudgeRefusedBackupKeys`.)
    if (decision.name === BACKUP_SECRET) {
      const check = await this.#judgeBackupKey(send.secret);
      if (check.judged === "malformed") {
        return { refused: { name: decision.name, deviceId: device.deviceId, reason: "malformed" } };
      }
      if (check.judged === "not_current") {
        bounded(
          this.#state.refused,
          JSON.stringify([send.requestId, check.publicKey]),
          { requestId: send.requestId, secret: new ReceivedSecret(decision.name, send.secret) },
          MAX_REFUSED_BACKUP_KEYS,
        );
        return { refused: { name: decision.name, deviceId: device.deviceId, reason: "not_current" } };
      }
      if (check.judged === "unknown") {
        const secret = this.#unchecked(send.requestId, check.publicKey, send.secret);
        return secret === undefined ? {} : { secret };
      }
    }
    this.#settle(send.requestId);
    if (field === undefined) return { secret: new ReceivedSecret(decision.name, send.secret) };
    // With the self-signing key (and a trusted identity) our device gets signed at the next query.
    this.#devices.markOutdated([this.#ctx.userId]);
    return {};
  }

  /**
   * A backup key handed to the client unchecked (no version known to be current here), or
   * undefined when this key already went out for this request (a replayed answer goes out once).
   */
  #unchecked(requestId: string, publicKey: string, value: string): ReceivedSecret | undefined {
    const key = JSON.stringify([requestId, publicKey]);
    if (this.#state.unchecked.has(key)) return undefined;
    bounded(this.#state.unchecked, key, true, MAX_UNCHECKED_BACKUP_KEYS);
    return new ReceivedSecret(BACKUP_SECRET, value);
  }

  /** A request answered: forgotten, and cancelled at our other devices (they need not answer). */
  #settle(requestId: string): void {
    this.#state.outstanding.delete(requestId);
    for (const [key, kept] of this.#state.refused) {
      if (kept.requestId === requestId) this.#state.refused.delete(key);
    }
    const reply = JSON.stringify([SECRET_REQUEST_TYPE, "cancel", requestId]);
    if (mayQueueReply(this.#ctx, this.#queued, reply)) {
      this.#queue(
        SECRET_REQUEST_TYPE,
        { [this.#ctx.userId]: { "*": buildSecretRequestCancellation(this.#ctx.deviceId, requestId) } },
        { reply },
      );
    }
  }

  /**
   * Our open requests for the backup key are settled once we hold the key of the version in use:
   * a key handed out unchecked was taken by the key backup, or the user gave one meanwhile.
   */
  async settleBackupKeyRequests(): Promise<void> {
    const requests = [...this.#state.outstanding.values()].filter((r) => r.name === BACKUP_SECRET);
    if (requests.length === 0) return;
    const state = await this.#backupState();
    if (state === undefined || state.stopped !== undefined) return;
    if ((await this.#value(BACKUP_SECRET)) === undefined) return;
    for (const request of requests) this.#settle(request.requestId);
  }

  /**
   * The backup keys refused as not current, judged again against the version in use (after a
   * version check, which may have replaced it with the server's): those that are its key now are
   * returned, for the key backup to take (it checks them again); those with no version known to be
   * current here go to the client with the next sync (`takeReleasedBackupKeys`), as an unchecked
   * key would; the others stay kept. Keys of requests no longer open are forgotten.
   */
  async rejudgeRefusedBackupKeys(): Promise<ReceivedSecret[]> {
    const current: ReceivedSecret[] = [];
    for (const [key, kept] of this.#state.refused) {
      if (!this.#state.outstanding.has(kept.requestId)) {
        this.#state.refused.delete(key);
        continue;
      }
      const check = await this.#judgeBackupKey(kept.secret.value);
      if (check.judged === "not_current") continue;
      this.#state.refused.delete(key);
      if (check.judged === "current") current.push(kept.secret);
      else if (check.judged === "unknown") {
        const secret = this.#unchecked(kept.requestId, check.publicKey, kept.secret.value);
        if (secret !== undefined && this.#state.released.length < MAX_REFUSED_BACKUP_KEYS) {
          this.#state.released.push(secret);
        }
      }
    }
    return current;
  }

  /** Refused backup keys released by `rejudgeRefusedBackupKeys` for the client (once). */
  takeReleasedBackupKeys(): ReceivedSecret[] {
    return this.#state.released.splice(0);
  }
}
