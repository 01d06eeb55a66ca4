// Dehydrated devices (MSC3814) in the client: upload one, rehydrate it on a new login (its queued
// to-device events fetched page by page and their room keys imported), and replace it on a
// schedule. The key lives in secret storage under `org.matrix.msc3814` (as matrix-js-sdk and the
// rust-sdk keep it), or is passed in by the caller. Its code (dehydration-impl.ts, with the
// dehydrated device's pickle) is loaded on first use: a dynamic import, a chunk of its own in a
// browser bundle, so a client that never dehydrates does not carry it.
import type { UnlockedSecretStorageKey } from "../../e2ee/index.ts";
import type { DehydratedDevicesImpl } from "./dehydration-impl.ts";
import type { DehydrationHost, DehydrationStartOptions, RehydrationResult } from "./dehydration-types.ts";
import { Lazy } from "./lazy.ts";

export class DehydratedDevices {
  readonly #impl: Lazy<DehydratedDevicesImpl>;
  /** `start()` was called: its code may still be loading, and the keys moved meanwhile must reach it. */
  #started = false;

  constructor(host: DehydrationHost) {
    this.#impl = new Lazy(
      async () => new (await import("./dehydration-impl.ts")).DehydratedDevicesImpl(host),
    );
  }

  /**
   * Uploads a new dehydrated device sealed under `key` (the server deletes the previous one),
   * cross-signed with our self-signing key. `DehydrationError("NOT_CROSS_SIGNED")`, and nothing
   * uploaded, when this device does not hold our published self-signing key (MSC3814: the device
   * must be cross-signed; clients share room keys with no other): set up or recover cross-signing
   * first. `crossSigned` is then always true.
   */
  async create(key: Uint8Array): Promise<{ deviceId: string; crossSigned: boolean }> {
    return (await this.#impl.get()).create(key);
  }

  /**
   * Reads the dehydrated device on the server with `key`, decrypts the to-device events queued
   * for it (paged, at most `MAX_DEHYDRATED_DEVICE_EVENTS`) and imports the room keys they carry;
   * events waiting for those keys are emitted again (`room.decrypted`). Undefined when the server
   * has no dehydrated device. `truncated` is true when the device held more events than the cap:
   * the rest were not read (their room keys are lost). `DehydrationError`: `WRONG_KEY` (this key
   * does not open it, or it was altered), `BAD_PICKLE`, `UNSUPPORTED_ALGORITHM` (an older
   * format), `BAD_RESPONSE`.
   */
  async rehydrate(key: Uint8Array): Promise<RehydrationResult | undefined> {
    return (await this.#impl.get()).rehydrate(key);
  }

  /**
   * Deletes the dehydrated device on the server; false when there was none. A running (or
   * starting) schedule stops first, else it would upload a device again; an upload of it under way
   * lands before the deletion.
   */
  async delete(): Promise<boolean> {
    return (await this.#impl.get()).delete();
  }

  /**
   * The dehydration key from secret storage (`org.matrix.msc3814`, base64); with `create`, a
   * new random key is stored when there is none, or none under this key (it then replaces the
   * copies under other keys, as the rust-sdk does). Secret storage errors pass through.
   */
  async keyFromSecretStorage(
    secretStorageKey: UnlockedSecretStorageKey,
    options: { create?: boolean } = {},
  ): Promise<Uint8Array> {
    return (await this.#impl.get()).keyFromSecretStorage(secretStorageKey, options);
  }

  /**
   * Starts dehydration: rehydrates the device on the server (unless `rehydrate: false`), uploads a
   * fresh one, and replaces it every `periodMs` until `stop()` (or the client closes). Returns
   * what rehydration found. The key comes from `key` or from secret storage (created there if
   * missing), with `secretStorageKey` the default key: another (opened before the default moved)
   * is refused, `DehydrationError("BAD_ARGUMENT")`, as other logins read the key with the default.
   * With the key from secret storage, a device on the server that it does not open (`WRONG_KEY`,
   * `BAD_PICKLE`, `UNSUPPORTED_ALGORITHM`: sealed by another client under another key, or in an
   * older format) is reported (`error` event) and replaced; with `key`, that error is thrown. A
   * failed rotation is reported and tried again next period. With the key from secret storage,
   * each upload (the first one, after rehydrating, and each rotation) first asks the server for
   * the default key and the dehydration key stored under it (as `defaultKeyMoved` does), and seals
   * under that: another login may have stored another one, or moved the default key, since. Moved
   * to a key this client does not hold, the schedule stops with a warning: `start` then uploads
   * nothing and resolves with what it rehydrated (`running` false). This device must hold our
   * self-signing key: else `NOT_CROSS_SIGNED` is thrown (after rehydrating) and nothing is
   * uploaded (`create`).
   */
  async start(options: DehydrationStartOptions): Promise<RehydrationResult | undefined> {
    this.#started = true;
    return (await this.#impl.get()).start(options);
  }

  /** The code, when a schedule may run or be starting (else undefined, nothing loaded for it). */
  async #scheduleImpl(): Promise<DehydratedDevicesImpl | undefined> {
    if (this.#impl.value !== undefined || !this.#started) return this.#impl.value;
    // Not loaded (the chunk failed): no `start()` got as far as a schedule.
    return this.#impl.get().catch(() => undefined);
  }

  /**
   * Called by the client after the default secret storage key was replaced (`secretStorageKey`:
   * `recovery.enable`, `changeRecoveryKey`, `resetIdentity`, `secretStorage.createKey`) or our
   * self-signing key (`identityReset`: `resetIdentity`, `bootstrapCrossSigning({ reset })`); apps
   * need not call it. While the schedule runs, a fresh device replaces the one on the server at
   * once: under a fresh dehydration key stored under the new default key only (when the schedule's
   * key came from secret storage), else under the same key (a caller's key, after a reset), signed
   * with our self-signing key of now; the schedule goes on with that key. A `start()` under way
   * moves the same way: its first device is sealed under the fresh key. Without it the schedule
   * sealed on under a key no other login reads (each then made its own, and the logins replaced
   * each other's devices), or left a device signed by the old self-signing key that no one shares
   * keys with. When the key cannot be stored, the schedule stops (its error is thrown).
   */
  async keysReplaced(change: {
    readonly secretStorageKey?: UnlockedSecretStorageKey;
    readonly identityReset?: boolean;
  }): Promise<void> {
    await (await this.#scheduleImpl())?.keysReplaced(change);
  }

  /**
   * Called by `secretStorage.setDefaultKey` before the default key becomes `keyId`; apps need not
   * call it. While a schedule runs (or starts) with its key from secret storage under another
   * key, the dehydration key is stored under `key` too (the same key: the device on the server,
   * and those of other logins that read it, stay sealed under it), so that a new login that opens
   * the new default key rehydrates. The dehydration key is read from secret storage first: another
   * login's stored since the schedule read its own is the one carried over. Without the opened `key` it cannot be:
   * `SecretStorageError("BAD_ARGUMENT")`, and the default key must stay as it is.
   */
  async defaultKeyChanging(keyId: string, key: UnlockedSecretStorageKey | undefined): Promise<void> {
    await (await this.#scheduleImpl())?.defaultKeyChanging(keyId, key);
  }

  /**
   * Called by the client when sync shows `m.secret_storage.default_key` pointing at `keyId`
   * (undefined: removed, `{}`, or malformed); apps need not call it. While a schedule runs (or
   * starts) with its key from secret storage under another key, and the server's default key is
   * still another one (another login moved it), the schedule follows it: with that key opened here
   * (one handed to `start`, `setDefaultKey` or `keysReplaced` while it ran), the dehydration key
   * stored under it is read and sealed under from then on (the login that stored it uploaded its
   * device). Else (a key this client does not hold, or no dehydration key readable under it) the
   * schedule stops, with a warning logged: sealing on under the old key, which new logins no longer
   * read, would replace their devices. `start` it again with the new default key. A default key
   * removed from the server stops it the same way (unless it started while none was set). Still
   * the schedule's key (the same ID, or moved away and back since the last sync): the dehydration
   * key stored under it is read again, and taken when another login stored another one.
   */
  async defaultKeyMoved(keyId: string | undefined): Promise<void> {
    await (await this.#scheduleImpl())?.defaultKeyMoved(keyId);
  }

  /** Whether a rotation schedule runs (never before the code was loaded). */
  get running(): boolean {
    return this.#impl.value?.running ?? false;
  }

  /**
   * Pauses the schedule: no rotation from now on, and its work under way (an upload, a key being
   * stored) ends before this resolves; the schedule and its keys are kept for `resume()` (or
   * wiped by `stop()`). A `start()` under way ends as with `stop()`. The client's `logout()`
   * calls it before the access token is revoked, which would fail that work, and `resume()` when
   * the revocation failed (the session goes on). Loads nothing when no `start()` was called.
   */
  async pauseAndWait(): Promise<void> {
    await (await this.#scheduleImpl())?.pauseAndWait();
  }

  /**
   * Sets the schedule `pauseAndWait()` paused going again, with the same keys; its period starts
   * over. Nothing when it was stopped, or another `start()` came, meanwhile.
   */
  resume(): void {
    this.#impl.value?.resume();
  }

  /** Stops the schedule (a paused one too) and forgets the keys held for it (the device stays on the server). */
  stop(): void {
    this.#impl.value?.stop();
  }

  toJSON(): Record<string, unknown> {
    return { type: "DehydratedDevices", running: this.running };
  }
}
