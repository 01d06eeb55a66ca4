/**
 * Our own device: the Olm account, its device keys, and keeping the server stocked with one-time
 * keys and a fallback key. New keys are persisted before the upload that carries them is handed
 * out; until the server acknowledges them they stay "unpublished" in the account, so a retry after
 * a lost response re-sends the same keys (less those used meanwhile) and the server never holds
 * keys we forgot.
 */
import { Account, type IdentityKeys, ONE_TIME_KEYS_TO_PUBLISH } from "../../crypto/olm/index.ts";
import type { AccountRecord } from "../../store/records.ts";
import { SUPPORTED_ALGORITHMS } from "../devices/device.ts";
import { E2eeError } from "../errors.ts";
import type { MachineContext } from "../machine-context.ts";
import type { DeviceKeysJson, KeysUploadRequest, KeysUploadResponse, SignedKeyJson } from "../requests.ts";
import { signWithAccount } from "../signing.ts";
import { KEY_ID_SKIP_ON_CONFLICT } from "./upload-conflict.ts";

export const SIGNED_CURVE25519 = "signed_curve25519";
/** The previous fallback key stays usable this long after a new one is published (late pre-key messages). */
export const OLD_FALLBACK_KEY_LIFETIME_MS = 60 * 60 * 1000;

export class OwnDevice {
  readonly #ctx: MachineContext;
  readonly account: Account;
  #deviceKeysUploaded: boolean;
  #serverCount: number | undefined;
  #fallbackCreatedAt: number | undefined;
  #fallbackNeeded = false;

  private constructor(ctx: MachineContext, account: Account, record: AccountRecord | undefined) {
    this.#ctx = ctx;
    this.account = account;
    this.#deviceKeysUploaded = record?.deviceKeysUploaded ?? false;
    this.#serverCount = record?.serverOneTimeKeyCount;
    this.#fallbackCreatedAt = record?.fallbackKeyCreatedAt;
  }

  /** Reads the account, or creates one (recorded in the step's changes) on first use. */
  static async load(ctx: MachineContext): Promise<OwnDevice> {
    const identity = await ctx.store.loadIdentity();
    if (identity.userId !== ctx.userId || identity.deviceId !== ctx.deviceId) {
      throw new E2eeError("STORE_MISMATCH", "the store belongs to a different user or device");
    }
    const record = await ctx.store.loadAccount();
    if (record === undefined) {
      const own = new OwnDevice(ctx, Account.create(), undefined);
      own.persistAccount();
      return own;
    }
    let account: Account;
    try {
      account = Account.fromPickle(record.pickle);
    } catch {
      throw new E2eeError("BAD_STORE_RECORD", "the stored account could not be read");
    }
    return new OwnDevice(ctx, account, record);
  }

  get identityKeys(): IdentityKeys {
    return this.account.identityKeys;
  }

  /** Our signed device keys, as uploaded and as other devices see them. */
  deviceKeys(): DeviceKeysJson {
    const { userId, deviceId } = this.#ctx;
    const keys = this.account.identityKeys;
    return signWithAccount(this.account, userId, deviceId, {
      user_id: userId,
      device_id: deviceId,
      algorithms: [...SUPPORTED_ALGORITHMS],
      keys: { [`curve25519:${deviceId}`]: keys.curve25519, [`ed25519:${deviceId}`]: keys.ed25519 },
    });
  }

  /**
   * How many one-time keys we keep on the server: 50, as vodozemac's clients do (and half of
   * libolm's 100). The account keeps up to 100 times that, so keys claimed but not used yet survive
   * the replacements made meanwhile.
   */
  get oneTimeKeyTarget(): number {
    return ONE_TIME_KEYS_TO_PUBLISH;
  }

  /** Sync reported the server's count (`device_one_time_keys_count`). */
  updateServerCount(count: unknown): void {
    // The server's word, unchecked until here: a count that is no count is ignored.
    if (typeof count === "number" && Number.isSafeInteger(count) && count >= 0) this.#serverCount = count;
  }

  /**
   * Sync reported which fallback key algorithms are still unused: when ours is missing (it was used),
   * a new fallback key goes out with the next upload.
   */
  updateUnusedFallbackKeys(types: readonly string[] | undefined): void {
    if (types === undefined || types.includes(SIGNED_CURVE25519)) return;
    // Its replacement is made but not acknowledged yet: the report is about the key it replaces,
    // and another rotation would drop that key (still claimed messages' key) within minutes.
    if (Object.keys(this.account.fallbackKey()).length > 0) return;
    this.#fallbackNeeded = true;
  }

  /**
   * The server no longer lists our device (a logout deleted it, and we logged in again with the
   * same device ID): upload our device keys and a fallback key again. One-time keys follow from
   * the server's count.
   */
  deviceKeysLost(): void {
    if (!this.#deviceKeysUploaded) return;
    this.#deviceKeysUploaded = false;
    this.#fallbackNeeded = true;
    this.persistAccount();
  }

  /** Forgets the previous fallback key once its grace period is over. */
  expireOldFallbackKey(): void {
    const created = this.#fallbackCreatedAt;
    if (created !== undefined && this.#ctx.now() - created > OLD_FALLBACK_KEY_LIFETIME_MS) {
      this.account.forgetOldFallbackKey();
      this.#fallbackCreatedAt = undefined;
      this.persistAccount();
    }
  }

  /**
   * The keys/upload body if anything needs uploading. Generating keys happens here and is
   * recorded in the step's changes, so the caller persists before handing the request out.
   */
  uploadBody(): KeysUploadRequest["body"] | undefined {
    let unpublished = this.account.oneTimeKeys();
    let fallback = this.account.fallbackKey();
    if (Object.keys(unpublished).length === 0 && this.#serverCount !== undefined) {
      const missing = this.oneTimeKeyTarget - this.#serverCount;
      if (missing > 0) {
        this.account.generateOneTimeKeys(missing);
        unpublished = this.account.oneTimeKeys();
        this.persistAccount();
      }
    }
    // A fresh device publishes a fallback key with its first upload; later ones replace a used one.
    const needFallback = !this.#deviceKeysUploaded || this.#fallbackNeeded;
    if (Object.keys(fallback).length === 0 && needFallback) {
      this.account.generateFallbackKey();
      this.#fallbackCreatedAt = this.#ctx.now();
      this.#fallbackNeeded = false;
      fallback = this.account.fallbackKey();
      this.persistAccount();
    }
    const body: KeysUploadRequest["body"] = {};
    if (!this.#deviceKeysUploaded) body.device_keys = this.deviceKeys();
    if (Object.keys(unpublished).length > 0) body.one_time_keys = this.#signKeys(unpublished, false);
    if (Object.keys(fallback).length > 0) body.fallback_keys = this.#signKeys(fallback, true);
    return Object.keys(body).length > 0 ? body : undefined;
  }

  /**
   * `body`, built earlier and not acknowledged yet, without the one-time keys a peer has used since
   * (a retry after a lost response): sent again, the server would hand such a key out once more.
   */
  withoutUsedKeys(body: KeysUploadRequest["body"]): KeysUploadRequest["body"] {
    const sent = body.one_time_keys;
    if (sent === undefined) return body;
    const held = this.account.oneTimeKeys();
    const prefix = `${SIGNED_CURVE25519}:`;
    const kept = Object.entries(sent).filter(([id]) => Object.hasOwn(held, id.slice(prefix.length)));
    if (kept.length === Object.keys(sent).length) return body;
    const { one_time_keys: _, ...rest } = body;
    return kept.length > 0 ? { ...rest, one_time_keys: Object.fromEntries(kept) } : rest;
  }

  #signKeys(keys: Record<string, string>, fallback: boolean): Record<string, SignedKeyJson> {
    const { userId, deviceId } = this.#ctx;
    const out: Record<string, SignedKeyJson> = {};
    for (const [keyId, key] of Object.entries(keys)) {
      const obj: { key: string; fallback?: boolean } = fallback ? { key, fallback: true } : { key };
      out[`${SIGNED_CURVE25519}:${keyId}`] = signWithAccount(this.account, userId, deviceId, obj);
    }
    return out;
  }

  /** The server acknowledged an upload: its keys are published now. */
  uploadSucceeded(body: KeysUploadRequest["body"], parsed: KeysUploadResponse): void {
    // Keys are only generated while building a body, never while one is in flight, so "all" is exact.
    if (body.one_time_keys !== undefined || body.fallback_keys !== undefined)
      this.account.markKeysAsPublished();
    if (body.device_keys !== undefined) this.#deviceKeysUploaded = true;
    this.#serverCount = parsed.one_time_key_counts[SIGNED_CURVE25519] ?? 0;
    this.persistAccount();
  }

  /**
   * The server refused our upload: it holds other keys under the IDs of ours (this store was
   * restored from an older copy; see `upload-conflict.ts`). The unpublished one-time keys, and the
   * fallback key if it was the one refused, are replaced by new ones numbered
   * `KEY_ID_SKIP_ON_CONFLICT` IDs on; the next `uploadBody()` carries them.
   */
  replaceRefusedKeys(fallback: boolean): void {
    this.account.replaceUnpublishedKeys(KEY_ID_SKIP_ON_CONFLICT, { fallback });
    this.persistAccount();
  }

  /** Records the account (and its bookkeeping) in the step's changes. */
  persistAccount(): void {
    this.#ctx.tx.account = {
      pickle: this.account.toPickle(),
      deviceKeysUploaded: this.#deviceKeysUploaded,
      ...(this.#serverCount === undefined ? {} : { serverOneTimeKeyCount: this.#serverCount }),
      ...(this.#fallbackCreatedAt === undefined ? {} : { fallbackKeyCreatedAt: this.#fallbackCreatedAt }),
    };
  }
}
