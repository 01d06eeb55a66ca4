/**
 * Cross-signing in the machine (spec "Cross-signing"): every tracked user's identity from
 * `/keys/query`, pinned on first sight; our own private keys; and the trust that follows:
 * - a device is cross-signed when its owner's self-signing key signed it;
 * - a user is verified when our user-signing key signed their master key, or we verified it
 *   locally; our own identity is verified when we hold its master key or verified it locally;
 * - a device is verified when marked so locally, or cross-signed by a verified user.
 * Signature uploads are requests like any other: offered by `outgoingRequests` until marked sent.
 */

import { isRecord } from "../../wire/json.ts";
import type { DeviceRecord } from "../devices/device.ts";
import type { OwnDevice } from "../identity/own-device.ts";
import type { MachineContext } from "../machine-context.ts";
import { newRequestId } from "../machine-context.ts";
import type { KeysQueryResponse, SignatureUploadRequest, SigningKeysUploadRequest } from "../requests.ts";
import { signWithAccount } from "../signing.ts";
import { CrossSigningError } from "./errors.ts";
import {
  type IdentityState,
  identityFromJson,
  identityInfo,
  identityToJson,
  UserIdentity,
  type UserIdentityInfo,
} from "./identity.ts";
import { type CrossSigningKey, checkUserKeys, isSignedBy, type KeyJson } from "./keys.ts";
import { CROSS_SIGNING_USAGES, generatePrivateKeys, SECRET_NAME, SigningKey } from "./private-keys.ts";

/**
 * Users kept in memory as having no cross-signing identity: verification events are looked up
 * under any made-up sender. Past this many, the one looked up longest ago is forgotten here (read
 * from the store again when needed).
 */
export const MAX_CACHED_MISSING_IDENTITIES = 1000;

/** What the machine keeps across a rebuild of its parts: signature uploads not yet sent. */
export type PendingSignatureUploads = Map<string, SignatureUploadRequest>;

/** A device's trust as cross-signing sees it. */
export interface DeviceCrossSigningTrust {
  /** Its owner's self-signing key signed it. */
  readonly crossSigned: boolean;
  /** Marked verified locally, or cross-signed by a user we verified. */
  readonly verified: boolean;
}

/** Our own cross-signing state. */
export interface CrossSigningStatus {
  /** Our published master key, if the server has one. */
  readonly masterKey: string | undefined;
  /** Which private keys we hold (matching the published keys, or not yet published). */
  readonly privateKeys: {
    readonly master: boolean;
    readonly selfSigning: boolean;
    readonly userSigning: boolean;
  };
  /** Our identity is verified: we hold its master key, or verified it locally. */
  readonly verified: boolean;
  /** This device carries a valid signature of our published self-signing key. */
  readonly deviceCrossSigned: boolean;
}

type PrivateKeys = { [U in "master" | "self_signing" | "user_signing"]: SigningKey | undefined };
type FullKeys = { [U in keyof PrivateKeys]: SigningKey };

const stripUnsigned = (obj: KeyJson): KeyJson => {
  const { unsigned: _u, ...rest } = obj;
  return rest;
};

export class CrossSigning {
  readonly #ctx: MachineContext;
  readonly #own: OwnDevice;
  readonly #pending: PendingSignatureUploads;
  /** `null`: the store has no (readable) identity for the user. */
  readonly #identities = new Map<string, UserIdentity | null>();
  /** The users `#identities` holds `null` for, looked up longest ago first. */
  readonly #missing = new Set<string>();
  #private: PrivateKeys = { master: undefined, self_signing: undefined, user_signing: undefined };
  /** The keys of a bootstrap in flight, by request ID. */
  #bootstrap: { id: string; keys: FullKeys; body: SigningKeysUploadRequest["body"] } | undefined;
  #ownDeviceSigned = false;
  #version = 0;

  private constructor(ctx: MachineContext, own: OwnDevice, pending: PendingSignatureUploads) {
    this.#ctx = ctx;
    this.#own = own;
    this.#pending = pending;
  }

  static async load(
    ctx: MachineContext,
    own: OwnDevice,
    pending: PendingSignatureUploads,
  ): Promise<CrossSigning> {
    const cs = new CrossSigning(ctx, own, pending);
    for (const usage of CROSS_SIGNING_USAGES) {
      const secret = await ctx.store.getSecret(SECRET_NAME[usage]);
      cs.#private[usage] = secret === undefined ? undefined : SigningKey.fromSecret(secret);
    }
    await cs.identity(ctx.userId);
    return cs;
  }

  /**
   * Raised by every change of what trust is judged by (an identity stored, a private key set):
   * what was judged at one version holds while it stays (room-key shares reuse their decision).
   */
  get version(): number {
    return this.#version;
  }

  // ---- identities ----

  async identity(userId: string): Promise<UserIdentity | undefined> {
    const cached = this.#identities.get(userId);
    if (cached !== undefined) return cached ?? undefined;
    const stored = await this.#ctx.store.getCrossSigningIdentity(userId);
    const record = stored === undefined ? undefined : identityFromJson(userId, stored.identity);
    const identity = record === undefined ? undefined : UserIdentity.fromRecord(record);
    this.#identities.set(userId, identity ?? null);
    if (identity === undefined) this.#missed(userId);
    return identity;
  }

  #missed(userId: string): void {
    this.#missing.add(userId);
    for (const oldest of this.#missing) {
      if (this.#missing.size <= MAX_CACHED_MISSING_IDENTITIES) break;
      this.#missing.delete(oldest);
      if (this.#identities.get(oldest) === null) this.#identities.delete(oldest);
    }
  }

  /** `identity()` from memory: `null` means "not loaded, ask `identity()`". */
  cachedIdentity(userId: string): UserIdentity | undefined | null {
    const cached = this.#identities.get(userId);
    return cached === undefined ? null : (cached ?? undefined);
  }

  #put(identity: UserIdentity): void {
    this.#version++;
    this.#identities.set(identity.userId, identity);
    this.#missing.delete(identity.userId);
    this.#ctx.tx.crossSigningIdentities.push({
      userId: identity.userId,
      identity: identityToJson(identity.record),
    });
  }

  /** Our own identity as loaded (`load` reads it first). */
  #ownIdentity(): UserIdentity | undefined {
    return this.#identities.get(this.#ctx.userId) ?? undefined;
  }

  /** Whether our own master key is trusted: we hold its private key, or verified it locally. */
  #ownTrusted(own: UserIdentity | undefined): boolean {
    if (own === undefined) return false;
    return this.#private.master?.publicKey === own.masterKey || own.locallyVerified;
  }

  /** Whether a user (ourselves included) is verified, given their identity. */
  isVerified(identity: UserIdentity): boolean {
    const own = this.#ownIdentity();
    if (identity.userId === this.#ctx.userId) return this.#ownTrusted(identity);
    if (identity.locallyVerified) return true;
    return this.#ownTrusted(own) && identity.masterSignedBy(this.#ctx.userId, own?.userSigning);
  }

  info(identity: UserIdentity): UserIdentityInfo {
    return identityInfo(identity, this.isVerified(identity));
  }

  state(identity: UserIdentity | undefined): IdentityState {
    return identity === undefined ? "none" : this.info(identity).state;
  }

  /** A device's cross-signing trust, given its owner's identity. */
  deviceTrust(device: DeviceRecord, identity: UserIdentity | undefined): DeviceCrossSigningTrust {
    const crossSigned = identity?.signedDevice(device) === true;
    const verified =
      device.trust === "verified" || (crossSigned && identity !== undefined && this.isVerified(identity));
    return { crossSigned, verified };
  }

  // ---- /keys/query ----

  /**
   * Applies the cross-signing keys of a `/keys/query` answer for the users it was asked about and
   * answered for. A new master key keeps the old pin (the identity shows as changed until
   * accepted); a user we had verified keeps `wasVerified` (a violation until withdrawn).
   */
  async receiveQueryResponse(users: readonly string[], response: KeysQueryResponse): Promise<void> {
    for (const userId of users) {
      if (response.device_keys?.[userId] === undefined) continue; // not answered: nothing learnt
      const rawMaster = response.master_keys?.[userId];
      if (rawMaster === undefined) continue; // no identity (kept if we knew one: a server cannot erase it)
      const keys = checkUserKeys(
        userId,
        rawMaster,
        response.self_signing_keys?.[userId],
        userId === this.#ctx.userId ? response.user_signing_keys?.[userId] : undefined,
      );
      if (typeof keys === "string") continue;
      const old = await this.identity(userId);
      if (old?.sameKeys(keys.master, keys.selfSigning, keys.userSigning)) continue;
      const next =
        old === undefined
          ? UserIdentity.first(keys.master, keys.selfSigning, keys.userSigning)
          : old.withKeys(keys.master, keys.selfSigning, keys.userSigning);
      const wasVerified =
        next.record.wasVerified || (old !== undefined && this.isVerified(old)) || this.#verifiedIfPut(next);
      this.#put(next.with({ wasVerified }));
    }
    if (users.includes(this.#ctx.userId)) this.#checkOwnDevice(response);
  }

  /** Whether `identity` would be verified once stored (own identity: against our private keys). */
  #verifiedIfPut(identity: UserIdentity): boolean {
    if (identity.userId === this.#ctx.userId) return this.#ownTrusted(identity);
    return this.isVerified(identity);
  }

  /** Our device as the server lists it: signed by our self-signing key? If not and we can, sign it. */
  #checkOwnDevice(response: KeysQueryResponse): void {
    const { userId, deviceId } = this.#ctx;
    const listed = response.device_keys?.[userId]?.[deviceId];
    const own = this.#ownIdentity();
    const ours =
      isRecord(listed) &&
      isRecord(listed.keys) &&
      listed.keys[`ed25519:${deviceId}`] === this.#own.identityKeys.ed25519;
    this.#ownDeviceSigned = ours && isSignedBy(listed, userId, own?.selfSigning);
    if (this.#ownDeviceSigned || own?.selfSigning === undefined) return;
    const ssk = this.#private.self_signing;
    if (ssk === undefined || ssk.publicKey !== own.selfSigning.publicKey || !this.#ownTrusted(own)) return;
    for (const r of this.#pending.values()) if (r.body[userId]?.[deviceId] !== undefined) return;
    this.#queue(userId, deviceId, ssk.signObject(userId, this.#own.deviceKeys() as unknown as KeyJson));
  }

  // ---- signature uploads ----

  #queue(userId: string, keyId: string, signed: KeyJson): SignatureUploadRequest {
    const request: SignatureUploadRequest = {
      id: newRequestId(),
      type: "signature_upload",
      body: { [userId]: { [keyId]: signed } },
    };
    this.#pending.set(request.id, request);
    return request;
  }

  pendingUploads(): SignatureUploadRequest[] {
    return [...this.#pending.values()];
  }

  hasUpload(id: string): boolean {
    return this.#pending.has(id) || this.#bootstrap?.id === id;
  }

  /** A signature upload (or the bootstrap's key upload) succeeded; returns the users to query again. */
  uploadSucceeded(id: string): string[] {
    const request = this.#pending.get(id);
    if (request !== undefined) {
      this.#pending.delete(id);
      if (request.body[this.#ctx.userId]?.[this.#ctx.deviceId] !== undefined) this.#ownDeviceSigned = true;
      return Object.keys(request.body);
    }
    const bootstrap = this.#bootstrap;
    if (bootstrap === undefined || bootstrap.id !== id) return [];
    this.#bootstrap = undefined;
    this.#published(bootstrap.keys, bootstrap.body);
    return [this.#ctx.userId];
  }

  // ---- our own identity ----

  status(): CrossSigningStatus {
    const own = this.#ownIdentity();
    const holds = (usage: keyof PrivateKeys, published: CrossSigningKey | undefined): boolean => {
      const key = this.#private[usage];
      return key !== undefined && (published === undefined || published.publicKey === key.publicKey);
    };
    return {
      masterKey: own?.masterKey,
      privateKeys: {
        master: holds("master", own?.master),
        selfSigning: holds("self_signing", own?.selfSigning),
        userSigning: holds("user_signing", own?.userSigning),
      },
      verified: this.#ownTrusted(own),
      deviceCrossSigned: this.#ownDeviceSigned,
    };
  }

  /**
   * New cross-signing keys (or the ones of an earlier bootstrap whose upload never succeeded),
   * persisted now, and the `/keys/device_signing/upload` request carrying them. Our device is
   * signed once that request is marked sent. Undefined when our published identity is already
   * ours (unless `reset`). Refuses to replace a published identity unless `reset`: when we hold
   * none of its keys, or only some (its master key without both sub-keys).
   */
  bootstrap(reset: boolean): SigningKeysUploadRequest | undefined {
    const { userId } = this.#ctx;
    const own = this.#ownIdentity();
    const held = this.#private;
    const publishedIsOurs = own !== undefined && held.master?.publicKey === own.masterKey;
    if (publishedIsOurs && !reset && held.self_signing !== undefined && held.user_signing !== undefined) {
      return undefined;
    }
    // Holding only the master key (or none) of the published identity: new keys would replace the
    // master key others pinned and verified. That takes `reset`.
    if (own !== undefined && !reset) {
      throw new CrossSigningError(
        "IDENTITY_EXISTS",
        "the account already has a cross-signing identity whose keys this device does not hold",
      );
    }
    const reuse =
      !reset &&
      own === undefined &&
      held.master !== undefined &&
      held.self_signing !== undefined &&
      held.user_signing !== undefined;
    const keys: FullKeys = reuse
      ? {
          master: held.master as SigningKey,
          self_signing: held.self_signing as SigningKey,
          user_signing: held.user_signing as SigningKey,
        }
      : generatePrivateKeys();
    for (const usage of CROSS_SIGNING_USAGES)
      this.#ctx.tx.secrets[SECRET_NAME[usage]] = keys[usage].toSecret();
    this.#private = { ...keys };
    this.#version++;
    // The master key also carries our device's signature, as other clients do.
    const master = signWithAccount(
      this.#own.account,
      userId,
      this.#ctx.deviceId,
      keys.master.publicObject(userId, "master"),
    );
    const request: SigningKeysUploadRequest = {
      id: newRequestId(),
      type: "signing_keys_upload",
      body: {
        master_key: master,
        self_signing_key: keys.master.signObject(
          userId,
          keys.self_signing.publicObject(userId, "self_signing"),
        ),
        user_signing_key: keys.master.signObject(
          userId,
          keys.user_signing.publicObject(userId, "user_signing"),
        ),
      },
    };
    this.#bootstrap = { id: request.id, keys, body: request.body };
    return request;
  }

  /** The bootstrap's keys reached the server: they are our identity now, and our device gets signed. */
  #published(keys: FullKeys, upload: SigningKeysUploadRequest["body"]): void {
    const { userId, deviceId } = this.#ctx;
    const checked = checkUserKeys(
      userId,
      upload.master_key,
      upload.self_signing_key,
      upload.user_signing_key,
    );
    if (typeof checked === "string") return;
    const old = this.#ownIdentity();
    const next =
      old === undefined
        ? UserIdentity.first(checked.master, checked.selfSigning, checked.userSigning)
        : old.withKeys(checked.master, checked.selfSigning, checked.userSigning);
    this.#put(next.with({ pinnedMasterKey: checked.master.publicKey, wasVerified: true }));
    this.#ownDeviceSigned = false;
    this.#queue(
      userId,
      deviceId,
      keys.self_signing.signObject(userId, this.#own.deviceKeys() as unknown as KeyJson),
    );
  }

  /**
   * Private keys learnt elsewhere (secret storage, or sent by another own device): each is kept
   * only if it matches our published public key. Holding the master key makes our identity trusted.
   */
  importPrivateKeys(secrets: { master?: string; selfSigning?: string; userSigning?: string }): string[] {
    const own = this.#ownIdentity();
    const published: Record<keyof PrivateKeys, CrossSigningKey | undefined> = {
      master: own?.master,
      self_signing: own?.selfSigning,
      user_signing: own?.userSigning,
    };
    const given: Record<keyof PrivateKeys, string | undefined> = {
      master: secrets.master,
      self_signing: secrets.selfSigning,
      user_signing: secrets.userSigning,
    };
    const imported: string[] = [];
    for (const usage of CROSS_SIGNING_USAGES) {
      const secret = given[usage];
      if (secret === undefined) continue;
      const key = SigningKey.fromSecret(secret);
      if (key === undefined || published[usage]?.publicKey !== key.publicKey) {
        throw new CrossSigningError(
          "KEY_MISMATCH",
          `the ${usage} key does not match our published ${usage} key`,
        );
      }
      this.#private[usage] = key;
      this.#version++;
      this.#ctx.tx.secrets[SECRET_NAME[usage]] = secret;
      imported.push(usage);
    }
    return imported;
  }

  /** Our private keys as secrets (for secret storage or sharing with our verified devices). */
  exportPrivateKeys(): { master?: string; selfSigning?: string; userSigning?: string } {
    const p = this.#private;
    return {
      ...(p.master === undefined ? {} : { master: p.master.toSecret() }),
      ...(p.self_signing === undefined ? {} : { selfSigning: p.self_signing.toSecret() }),
      ...(p.user_signing === undefined ? {} : { userSigning: p.user_signing.toSecret() }),
    };
  }

  /** Our published master key when we trust it (we hold it, or verified it locally): a key backup's signer. */
  trustedOwnMasterKey(): string | undefined {
    const own = this.#ownIdentity();
    return own !== undefined && this.#ownTrusted(own) ? own.masterKey : undefined;
  }

  /** `obj` signed with our master key, when we hold the published one (a new key backup's `auth_data`). */
  signWithMasterKey<T extends Record<string, unknown>>(obj: T): T {
    const master = this.#private.master;
    const own = this.#ownIdentity();
    if (master === undefined || own === undefined || own.masterKey !== master.publicKey) return obj;
    return master.signObject(this.#ctx.userId, obj);
  }

  // ---- decisions ----

  /**
   * Our self-signing key when we hold it and it is the published one: it signs a new device of
   * ours (a dehydrated device) before it is uploaded.
   */
  selfSigningKey(): SigningKey | undefined {
    const ssk = this.#private.self_signing;
    return ssk !== undefined && this.#ownIdentity()?.selfSigning?.publicKey === ssk.publicKey
      ? ssk
      : undefined;
  }

  /**
   * A device was verified (interactively, or on the app's say-so): for one of our own other
   * devices, the signature of our self-signing key to upload (when we hold it).
   */
  signDevice(device: DeviceRecord): SignatureUploadRequest | undefined {
    const { userId } = this.#ctx;
    if (device.userId !== userId) return undefined;
    const own = this.#ownIdentity();
    const ssk = this.#private.self_signing;
    if (ssk === undefined || own?.selfSigning?.publicKey !== ssk.publicKey) return undefined;
    const obj =
      device.deviceId === this.#ctx.deviceId
        ? (this.#own.deviceKeys() as unknown as KeyJson)
        : stripUnsigned(device.keys as unknown as KeyJson);
    return this.#queue(userId, device.deviceId, ssk.signObject(userId, obj));
  }

  /**
   * A user was verified: their current master key is pinned and verified locally, and (for
   * another user, when we hold our user-signing key) signed for upload. For ourselves this makes
   * our own identity trusted, and every own device it cross-signed verified. With `masterKey`,
   * only that key is verified: a different current one throws `IDENTITY_CHANGED`.
   */
  async verifyUser(
    userId: string,
    masterKey?: string,
  ): Promise<{ identity: UserIdentityInfo; request: SignatureUploadRequest | undefined }> {
    const identity = await this.#checkedIdentity(userId, masterKey);
    const next = identity.with({
      pinnedMasterKey: identity.masterKey,
      locallyVerifiedMasterKey: identity.masterKey,
      wasVerified: true,
    });
    this.#put(next);
    let request: SignatureUploadRequest | undefined;
    const own = this.#ownIdentity();
    const usk = this.#private.user_signing;
    if (userId !== this.#ctx.userId && usk !== undefined && own?.userSigning?.publicKey === usk.publicKey) {
      request = this.#queue(
        userId,
        identity.masterKey,
        usk.signObject(this.#ctx.userId, stripUnsigned(identity.master.json)),
      );
    }
    return { identity: this.info(next), request };
  }

  /**
   * The app accepts a user's current identity: it becomes the pinned one; a violation is cleared.
   * With `masterKey` (the one the person was shown), a different current one throws `IDENTITY_CHANGED`.
   */
  async acceptIdentity(userId: string, masterKey?: string): Promise<UserIdentityInfo> {
    const identity = await this.#checkedIdentity(userId, masterKey);
    const next = identity.with({
      pinnedMasterKey: identity.masterKey,
      wasVerified: this.isVerified(identity),
    });
    this.#put(next);
    return this.info(next);
  }

  /** The user's identity, when we know one and its master key is `masterKey` (when given). */
  async #checkedIdentity(userId: string, masterKey: string | undefined): Promise<UserIdentity> {
    const identity = await this.identity(userId);
    if (identity === undefined) {
      throw new CrossSigningError("NO_IDENTITY", "the user has no cross-signing identity we know of");
    }
    if (masterKey !== undefined && identity.masterKey !== masterKey) {
      throw new CrossSigningError("IDENTITY_CHANGED", "the user's master key is not the one checked");
    }
    return identity;
  }

  /** The app withdraws a user's verification: no longer a violation, no longer locally verified. */
  async withdrawVerification(userId: string): Promise<UserIdentityInfo> {
    const identity = await this.identity(userId);
    if (identity === undefined)
      throw new CrossSigningError("NO_IDENTITY", "the user has no cross-signing identity we know of");
    const next = identity.with({ locallyVerifiedMasterKey: undefined, wasVerified: false });
    this.#put(next);
    return this.info(next);
  }
}
