// The code behind `DehydratedDevices` (dehydration.ts, which says what it does), loaded on its
// first use: the dehydrated device uploaded, rehydrated (its queued to-device events fetched page
// by page, their room keys imported) and replaced on a schedule; its key read from or written to
// secret storage.
import { decodeBase64, encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { SecretStorageError } from "../../crypto/secret-storage/index.ts";
import {
  DEHYDRATED_DEVICE_PATH,
  DehydrationError,
  dehydratedEventsRequest,
  parseDehydratedDevice,
  parseDehydratedEventsPage,
  RehydratedDevice,
  UnlockedSecretStorageKey,
} from "../../e2ee/index.ts";
import { jsonObjectSchema } from "../../wire/index.ts";
import { MatrixError } from "../errors.ts";
import type { RequestPath } from "../http.ts";
import {
  DEFAULT_DEHYDRATION_PERIOD_MS,
  DEHYDRATED_DEVICE_DISPLAY_NAME,
  DEHYDRATION_SECRET_NAME,
  MIN_DEHYDRATION_PERIOD_MS,
} from "./constants.ts";
import type { DehydrationHost, DehydrationStartOptions, RehydrationResult } from "./dehydration-types.ts";

/**
 * Why a dehydrated device cannot be opened with a key that is the right one: sealed under another
 * key (another client's, or before the key in secret storage was replaced), or in another format.
 */
const UNUSABLE_DEVICE: ReadonlySet<string> = new Set(["WRONG_KEY", "BAD_PICKLE", "UNSUPPORTED_ALGORITHM"]);

/**
 * Opened secret storage keys a schedule keeps (copies of those handed to `start`,
 * `defaultKeyChanging` and `keysReplaced`), to follow the default key when another login moves it
 * to one of them; past this many, the oldest is wiped first.
 */
export const MAX_SCHEDULE_STORAGE_KEYS = 4;

const unstable = (suffix = ""): RequestPath => {
  const p = `${DEHYDRATED_DEVICE_PATH}${suffix}`;
  return { encoded: p, template: p };
};

/** A rotation schedule: starting (`start()` under way), then running (or paused, see `pauseAndWait`). */
interface Schedule {
  /** Ends its rotations (`stop()`, `pauseAndWait()`); a new one when resumed. */
  abort: AbortController;
  /** How often it replaces the device. */
  readonly periodMs: number;
  /**
   * The dehydration key it seals under (replaced by `keysReplaced`, zeroed by `stop()`); empty
   * until `start()` has read it.
   */
  key: Uint8Array;
  /**
   * The secret storage key the dehydration key is stored under (read from, or created in), which
   * `defaultKeyChanging` and `keysReplaced` move; undefined for a key the caller passed.
   */
  storageKeyId: string | undefined;
  /**
   * Copies of the opened secret storage keys handed to the schedule, by key ID (at most
   * `MAX_SCHEDULE_STORAGE_KEYS`): `defaultKeyMoved` reads the dehydration key with the one the
   * default moved to. Wiped when the schedule ends.
   */
  readonly storageKeys: Map<string, UnlockedSecretStorageKey>;
  /**
   * Whether `storageKeyId` was the server's default key when last seen (false for a schedule
   * started while no default key was set): removing the default then stops the schedule.
   */
  followsDefault: boolean;
  /**
   * Counts key changes (`keysReplaced`, `defaultKeyMoved`): a rotation that sees it change
   * meanwhile uploads nothing; the first upload of a starting schedule is made again.
   */
  epoch: number;
}

/** `DehydratedDevices`'s code, loaded on first use; its methods are documented there (`dehydration.ts`). */
export class DehydratedDevicesImpl {
  readonly #host: DehydrationHost;
  #schedule: Schedule | undefined;
  /** The schedule `pauseAndWait()` paused, its keys kept, until `resume()` or `stop()`. */
  #paused: Schedule | undefined;
  /**
   * The schedule of the `start()` under way (until it runs): the keys replaced meanwhile move it as
   * they move a running one, or `start()` would seal under, and rotate, a key no new login reads.
   */
  #starting: Schedule | undefined;
  /**
   * The schedule's key reads and writes in secret storage (`start()`'s, `keysReplaced`,
   * `defaultKeyChanging`) and its uploads (rotations, `keysReplaced`), one after the other: the
   * lease lets this process's units overlap, a rotation must not land after the device that
   * replaced its key, and a key stored by one must not overwrite the other's.
   */
  #uploads: Promise<unknown> = Promise.resolve();

  constructor(host: DehydrationHost) {
    this.#host = host;
  }

  /** Runs `work` as one unit of work on the crypto store (under its lease), as the client's others. */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#host.exclusive?.(work) ?? work();
  }

  /** `work` after the schedule's uploads queued before it. */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#uploads.then(work, work);
    this.#uploads = run.catch(() => undefined);
    return run;
  }

  create(key: Uint8Array): Promise<{ deviceId: string; crossSigned: boolean }> {
    return this.#exclusive(async () => {
      await this.#host.refreshOwnKeys();
      const { deviceId, body, crossSigned } = await this.#host.machine.dehydration.create(
        key,
        DEHYDRATED_DEVICE_DISPLAY_NAME,
      );
      // Uploading would replace the device on the server (and its queue) with one nobody shares
      // room keys with: e.g. a rotation on a device whose identity was reset elsewhere.
      if (!crossSigned) {
        throw new DehydrationError(
          "NOT_CROSS_SIGNED",
          "this device does not hold our self-signing key: a dehydrated device must be cross-signed",
        );
      }
      await this.#host.http.request({ method: "PUT", path: unstable(), body, schema: jsonObjectSchema });
      return { deviceId, crossSigned };
    });
  }

  async rehydrate(key: Uint8Array): Promise<RehydrationResult | undefined> {
    const { http, machine } = this.#host;
    let raw: unknown;
    try {
      raw = await http.request({ method: "GET", path: unstable(), schema: jsonObjectSchema });
    } catch (e) {
      if (e instanceof MatrixError && e.errcode === "M_NOT_FOUND") return undefined;
      throw e;
    }
    const { deviceId, deviceData } = parseDehydratedDevice(raw);
    const device = RehydratedDevice.open({ userId: machine.userId, deviceId, deviceData, key });
    let events = 0;
    let imported = 0;
    let truncated = false;
    try {
      let nextBatch: string | undefined;
      let draft: "get" | "post" = "get";
      for (;;) {
        let body: unknown;
        try {
          body = await this.#eventsPage(deviceId, nextBatch, draft);
        } catch (e) {
          // A server of the earlier draft knows only POST.
          if (!(draft === "get" && e instanceof MatrixError && e.errcode === "M_UNRECOGNIZED")) throw e;
          draft = "post";
          body = await this.#eventsPage(deviceId, nextBatch, draft);
        }
        const page = parseDehydratedEventsPage(body, events);
        events += page.events.length;
        const { roomKeys, bundles } = device.receiveEvents(page.events);
        // Under the lease, page by page (not while fetching the next one).
        const result = await this.#exclusive(() => machine.dehydration.importRoomKeys(roomKeys, bundles));
        imported += result.imported;
        await this.#host.emitRedecrypted(result.redecrypted);
        if (page.done) {
          truncated = page.truncated;
          break;
        }
        nextBatch = page.nextBatch;
      }
    } finally {
      device.wipe();
    }
    await this.#host.flush();
    return { deviceId, events, imported, truncated };
  }

  /**
   * One page of the device's events: `GET …/events?from=` (the current draft, which Synapse and
   * matrix-js-sdk 43 use; no `next_batch` at the end), or `POST` with `{ next_batch }` (the earlier
   * draft; an empty page at the end). `parseDehydratedEventsPage` stops on either.
   */
  #eventsPage(deviceId: string, nextBatch: string | undefined, draft: "get" | "post"): Promise<unknown> {
    const path = unstable(`/${encodeURIComponent(deviceId)}/events`);
    return draft === "get"
      ? this.#host.http.request({
          method: "GET",
          path,
          ...(nextBatch === undefined ? {} : { query: { from: nextBatch } }),
          schema: jsonObjectSchema,
        })
      : this.#host.http.request({
          method: "POST",
          path,
          body: dehydratedEventsRequest(nextBatch),
          schema: jsonObjectSchema,
        });
  }

  async delete(): Promise<boolean> {
    // A running (or starting) schedule would upload a device again, at once or at its next
    // rotation: it ends, as the rust-sdk's does. The deletion goes through its queue, after an
    // upload under way, which would land after it and leave a device on the server.
    this.stop();
    return this.#serial(async () => {
      try {
        await this.#host.http.request({ method: "DELETE", path: unstable(), schema: jsonObjectSchema });
        return true;
      } catch (e) {
        if (e instanceof MatrixError && e.errcode === "M_NOT_FOUND") return false;
        throw e;
      }
    });
  }

  async keyFromSecretStorage(
    secretStorageKey: UnlockedSecretStorageKey,
    options: { create?: boolean } = {},
  ): Promise<Uint8Array> {
    const storage = this.#host.secretStorage;
    let text: string;
    try {
      text = await storage.get(DEHYDRATION_SECRET_NAME, secretStorageKey);
    } catch (e) {
      // Stored under other keys only counts as absent (as in the rust-sdk): a recovery key changed
      // without the old one left it under the retired key, and no login could dehydrate again.
      const absent =
        e instanceof SecretStorageError &&
        (e.code === "SECRET_MISSING" || e.code === "SECRET_NOT_ENCRYPTED_FOR_KEY");
      if (!absent || options.create !== true) throw e;
      const key = randomBytes(32);
      // Replacing the copies under other keys: they hold a key that will open no device.
      await storage.store(DEHYDRATION_SECRET_NAME, encodeBase64(key), [secretStorageKey], { replace: true });
      return key;
    }
    let key: Uint8Array;
    try {
      key = decodeBase64(text.trim());
    } catch {
      throw new DehydrationError("BAD_ARGUMENT", "the stored dehydration key is not base64");
    }
    if (key.length !== 32)
      throw new DehydrationError("BAD_ARGUMENT", "the stored dehydration key is not 32 bytes");
    return key;
  }

  async start(options: DehydrationStartOptions): Promise<RehydrationResult | undefined> {
    const periodMs = options.periodMs ?? DEFAULT_DEHYDRATION_PERIOD_MS;
    if (!Number.isSafeInteger(periodMs) || periodMs < MIN_DEHYDRATION_PERIOD_MS) {
      throw new DehydrationError("BAD_ARGUMENT", "the dehydration period is at least one minute");
    }
    const { key: callerKey, secretStorageKey } = options;
    if (callerKey === undefined && secretStorageKey === undefined) {
      throw new DehydrationError("BAD_ARGUMENT", "give the dehydration key or a secret storage key");
    }
    const schedule: Schedule = {
      abort: new AbortController(),
      periodMs,
      key: new Uint8Array(0),
      storageKeyId: callerKey === undefined ? secretStorageKey?.keyId : undefined,
      storageKeys: new Map(),
      followsDefault: false,
      epoch: 0,
    };
    if (callerKey === undefined) retain(schedule, secretStorageKey);
    // Known before the key is read: a `keysReplaced` or `defaultKeyChanging` from now on waits for
    // the read (and the key it may store), then moves this schedule. The one running ends, and an
    // earlier `start()` under way schedules nothing.
    this.stop();
    this.#starting = schedule;
    let scheduled = false;
    try {
      await this.#serial(async () => {
        if (callerKey === undefined) {
          const defaultKeyId = await this.#assertDefault(secretStorageKey as UnlockedSecretStorageKey);
          schedule.followsDefault = defaultKeyId !== undefined;
        }
        const key =
          callerKey !== undefined
            ? callerKey.slice()
            : await this.keyFromSecretStorage(secretStorageKey as UnlockedSecretStorageKey, { create: true });
        if (this.#starting === schedule) schedule.key = key;
        else key.fill(0);
      });
      // `stop()` (the client closing) or another `start()` came meanwhile: nothing from this one.
      if (this.#starting !== schedule) return undefined;
      let result: RehydrationResult | undefined;
      if (options.rehydrate !== false) {
        // A copy: the keys replaced meanwhile wipe the schedule's.
        const rehydrateKey = schedule.key.slice();
        try {
          result = await this.#rehydrateForStart(rehydrateKey, options);
        } finally {
          rehydrateKey.fill(0);
        }
      }
      // Sealed and uploaded in the queue, after what came before it (an upload of the schedule this
      // one replaces, a key being moved); again when the keys were replaced meanwhile
      // (`keysReplaced` swapped `schedule.key`, or our self-signing key), or the device on the
      // server would be one that no new login opens (or that no one shares keys with).
      for (let sealed = false; !sealed; ) {
        sealed = await this.#serial(async () => {
          if (this.#starting !== schedule) return true; // stopped, or another `start()`
          // Under the key secret storage holds now: another login may have moved the default key,
          // or stored another dehydration key, while this one rehydrated (no sync seen yet).
          // Moved to a key it does not hold: it stops, with a warning, and uploads nothing.
          if (!(await this.#followStorage(schedule)) || this.#starting !== schedule) return true;
          const epoch = schedule.epoch;
          const sealKey = schedule.key.slice();
          try {
            await this.create(sealKey);
          } finally {
            sealKey.fill(0);
          }
          if (this.#starting !== schedule) return true;
          if (epoch !== schedule.epoch) return false;
          this.#starting = undefined;
          this.#schedule = schedule;
          return true;
        });
      }
      if (this.#schedule !== schedule) return result;
      scheduled = true;
      void this.#rotate(schedule);
      return result;
    } finally {
      if (this.#starting === schedule) this.#starting = undefined;
      if (!scheduled) forget(schedule);
    }
  }

  /**
   * Other logins read the dehydration key with the default secret storage key: under another one
   * (a key opened before the default moved), `start()` would seal under a key they do not read, or
   * replace theirs with one made under it, and the logins would replace each other's devices.
   */
  async #assertDefault(secretStorageKey: UnlockedSecretStorageKey): Promise<string | undefined> {
    const defaultKeyId = await this.#host.secretStorage.defaultKeyId();
    if (defaultKeyId !== undefined && defaultKeyId !== secretStorageKey.keyId) {
      throw new DehydrationError(
        "BAD_ARGUMENT",
        "this secret storage key is not the default one (it was replaced): unlock the default key",
      );
    }
    return defaultKeyId;
  }

  /**
   * Rehydration as `start()` does it. With the key from secret storage, which every client of
   * the account reads, a device that key does not open is of use to no one: it is reported
   * (`error` event) and replaced, instead of leaving the account without dehydration for good.
   * A key the caller passed may be the wrong one: the error is thrown.
   */
  async #rehydrateForStart(
    key: Uint8Array,
    options: DehydrationStartOptions,
  ): Promise<RehydrationResult | undefined> {
    try {
      return await this.rehydrate(key);
    } catch (e) {
      if (options.key !== undefined || !(e instanceof DehydrationError) || !UNUSABLE_DEVICE.has(e.code))
        throw e;
      this.#host.reportError(e);
      return undefined;
    }
  }

  async #rotate(schedule: Schedule): Promise<void> {
    const signal = schedule.abort.signal;
    for (;;) {
      try {
        await this.#host.clock.sleep(schedule.periodMs, signal);
      } catch {
        return; // stopped
      }
      if (signal.aborted) return;
      const epoch = schedule.epoch;
      try {
        await this.#serial(async () => {
          // Stopped meanwhile (the device deleted, perhaps): nothing. The keys were replaced
          // meanwhile: the device uploaded then is this period's.
          if (signal.aborted || schedule.epoch !== epoch) return;
          // Sealed under the key secret storage holds now, not the one read a period ago.
          if (!(await this.#followStorage(schedule)) || signal.aborted) return;
          // A copy: `stop()` while the upload is under way wipes the schedule's key, and the
          // device must not be sealed under the wiped (all-zero) key.
          const sealKey = schedule.key.slice();
          try {
            await this.create(sealKey);
          } finally {
            sealKey.fill(0);
          }
        });
      } catch (e) {
        if (signal.aborted) return;
        this.#host.reportError(e);
      }
    }
  }

  async keysReplaced(change: {
    readonly secretStorageKey?: UnlockedSecretStorageKey;
    readonly identityReset?: boolean;
  }): Promise<void> {
    const schedule = this.#schedule ?? this.#starting;
    if (schedule === undefined) return;
    const storageKey = schedule.storageKeyId !== undefined ? change.secretStorageKey : undefined;
    // A key the caller keeps is not in secret storage: only a new signature calls for a new device.
    if (storageKey === undefined && change.identityReset !== true) return;
    schedule.epoch++;
    await this.#serial(async () => {
      if (!this.#current(schedule)) return; // stopped, or started again, meanwhile
      if (storageKey !== undefined) {
        const fresh = randomBytes(32);
        try {
          // Only under the new default key: the old one may have leaked, and no login reads it now.
          await this.#host.secretStorage.store(DEHYDRATION_SECRET_NAME, encodeBase64(fresh), [storageKey], {
            replace: true,
          });
        } catch (e) {
          fresh.fill(0);
          // Sealing on under the old key would make every other login replace our devices.
          if (this.#current(schedule)) this.stop();
          throw e;
        }
        if (!this.#current(schedule)) {
          fresh.fill(0);
          return;
        }
        schedule.key.fill(0);
        schedule.key = fresh;
        schedule.storageKeyId = storageKey.keyId;
        schedule.followsDefault = true;
        retain(schedule, storageKey);
        // Again, now the key is swapped: a rotation (or a starting schedule's first upload) that
        // took the old key meanwhile does not land it after the device sealed under the new one.
        schedule.epoch++;
      }
      // Starting: its first upload, after this, seals under the new key (signed by our keys of now).
      if (this.#schedule !== schedule) return;
      const sealKey = schedule.key.slice();
      try {
        await this.create(sealKey);
      } finally {
        sealKey.fill(0);
      }
    });
  }

  async defaultKeyChanging(keyId: string, key: UnlockedSecretStorageKey | undefined): Promise<void> {
    const schedule = this.#schedule ?? this.#starting;
    if (schedule?.storageKeyId === undefined || schedule.storageKeyId === keyId) return;
    if (key === undefined || key.keyId !== keyId) {
      throw new SecretStorageError(
        "BAD_ARGUMENT",
        "dehydration runs with its key in secret storage: pass the opened key to setDefaultKey, so that it is stored under it too",
      );
    }
    await this.#serial(async () => {
      if (!this.#current(schedule) || schedule.storageKeyId === keyId) return;
      // Another login may have stored another dehydration key (and sealed its device under it)
      // since this schedule read its own: that one is carried over.
      const held = schedule.storageKeyId;
      const opened = held === undefined ? undefined : schedule.storageKeys.get(held);
      if (opened !== undefined && !(await this.#adoptStored(schedule, opened))) return;
      // The same key, its entries for other keys kept: the device on the server is sealed under it,
      // and so are the devices of other logins' schedules that read it from secret storage.
      const text = encodeBase64(schedule.key);
      await this.#host.secretStorage.store(DEHYDRATION_SECRET_NAME, text, [key]);
      if (!this.#current(schedule)) return;
      // `followsDefault` as it was: the default moves after this (and may not, should that fail).
      schedule.storageKeyId = keyId;
      retain(schedule, key);
    });
  }

  async defaultKeyMoved(_keyId: string | undefined): Promise<void> {
    const schedule = this.#schedule ?? this.#starting;
    // Whatever key ID sync shows, the schedule's own included: moved away and back between two
    // syncs, the default key may hold another dehydration key now.
    if (schedule?.storageKeyId === undefined) return;
    await this.#serial(async () => {
      if (this.#current(schedule)) await this.#followStorage(schedule);
    });
  }

  /**
   * In the queue, before the schedule seals a device: brings it in line with secret storage as
   * the server holds it now, which another login may have changed since it last looked (sync may
   * be behind, or not running). The server's default key decides. Moved to a key the schedule
   * holds (`storageKeys`), the dehydration key stored under it is taken; to one it does not hold,
   * or under which none is readable, or removed (while the schedule's key was the default), the
   * schedule stops with a warning (`#stopUnfollowed`). Still its key: a dehydration key stored
   * there that differs from the schedule's is taken (another login stored it and sealed its device
   * under it). True when the schedule goes on; a caller's key is not in secret storage.
   */
  async #followStorage(schedule: Schedule): Promise<boolean> {
    const held = schedule.storageKeyId;
    if (held === undefined) return this.#current(schedule);
    const now = await this.#host.secretStorage.defaultKeyId();
    if (!this.#current(schedule)) return false;
    if (now === undefined && schedule.followsDefault) {
      // Removed (recovery turned off elsewhere): no login reads the dehydration key any more,
      // and one that sets up a new default key makes its own, whose devices ours would replace.
      // A schedule started while no default key was set has none to lose.
      this.#stopUnfollowed(schedule, undefined, "removed the default secret storage key");
      return false;
    }
    if (now === undefined || now === held) {
      const opened = schedule.storageKeys.get(held);
      if (opened === undefined) return true; // never: the key it is stored under is kept
      if (!(await this.#adoptStored(schedule, opened))) return false;
      if (now !== undefined) schedule.followsDefault = true;
      return true;
    }
    const opened = schedule.storageKeys.get(now);
    if (opened === undefined) {
      this.#stopUnfollowed(
        schedule,
        now,
        "moved the default secret storage key to a key this client does not hold",
      );
      return false;
    }
    let key: Uint8Array;
    try {
      key = await this.keyFromSecretStorage(opened);
    } catch (e) {
      if (!(e instanceof SecretStorageError || e instanceof DehydrationError)) throw e;
      this.#stopUnfollowed(
        schedule,
        now,
        `moved the default secret storage key to a key under which no dehydration key is readable (${e.code})`,
      );
      return false;
    }
    if (!this.#take(schedule, key)) return false;
    schedule.storageKeyId = now;
    schedule.followsDefault = true;
    return true;
  }

  /**
   * The dehydration key stored under `opened` (the schedule's storage key) taken when it differs
   * from the schedule's. None readable there leaves the schedule's key as it is: its own write
   * under way (`recovery.changeRecoveryKey` stores it under the new key alone before the default
   * moves), or a record another client left unreadable, which sealing on under our key outlasts.
   * False when the schedule ended meanwhile.
   */
  async #adoptStored(schedule: Schedule, opened: UnlockedSecretStorageKey): Promise<boolean> {
    let key: Uint8Array;
    try {
      key = await this.keyFromSecretStorage(opened);
    } catch (e) {
      if (!(e instanceof SecretStorageError || e instanceof DehydrationError)) throw e;
      return this.#current(schedule);
    }
    return this.#take(schedule, key);
  }

  /**
   * `key`, read from secret storage, becomes the schedule's when it differs: the login that stored
   * it uploaded a device sealed under it, rotations go on with it, and one that took the old key
   * meanwhile uploads nothing (a starting schedule seals again). False (`key` wiped) when the
   * schedule ended meanwhile.
   */
  #take(schedule: Schedule, key: Uint8Array): boolean {
    if (!this.#current(schedule)) {
      key.fill(0);
      return false;
    }
    if (equalBytes(key, schedule.key)) {
      key.fill(0);
    } else {
      schedule.key.fill(0);
      schedule.key = key;
      schedule.epoch++;
    }
    return true;
  }

  /**
   * The default key moved to one whose dehydration key this schedule cannot read, or was removed:
   * sealing on under the old one, which new logins no longer read, would replace the devices they
   * seal under the new one (and they ours), so the schedule stops, with a warning saying why (key
   * IDs only). `to`: the new default key's ID, undefined when removed.
   */
  #stopUnfollowed(schedule: Schedule, to: string | undefined, what: string): void {
    if (!this.#current(schedule)) return;
    const from = schedule.storageKeyId;
    this.stop();
    this.#host.logger.warn(
      { from, to: to ?? null },
      `dehydration stopped: another login ${what}; start dehydration again with the new default key`,
    );
  }

  /** The schedule is the one running or starting (not stopped, nor replaced by another `start()`). */
  #current(schedule: Schedule): boolean {
    return this.#schedule === schedule || this.#starting === schedule;
  }

  get running(): boolean {
    return this.#schedule !== undefined;
  }

  async pauseAndWait(): Promise<void> {
    const schedule = this.#schedule;
    this.#schedule = undefined; // out of `stop()`'s reach: its keys are kept
    this.stop(); // a `start()` under way ends, an earlier pause is forgotten
    if (schedule !== undefined) {
      // No rotation from now on (one under way lands, below); `resume()` sets them going again.
      schedule.abort.abort();
      this.#paused = schedule;
    }
    await this.#serial(async () => undefined);
  }

  resume(): void {
    const schedule = this.#paused;
    this.#paused = undefined;
    if (schedule === undefined) return;
    // A `start()` since (it stopped the paused one: never here) or one under way wins.
    if (this.#schedule !== undefined || this.#starting !== undefined) {
      forget(schedule);
      return;
    }
    schedule.abort = new AbortController();
    this.#schedule = schedule;
    void this.#rotate(schedule);
  }

  stop(): void {
    this.#starting = undefined;
    const paused = this.#paused;
    this.#paused = undefined;
    if (paused !== undefined) forget(paused);
    const schedule = this.#schedule;
    this.#schedule = undefined;
    if (schedule === undefined) return;
    schedule.abort.abort();
    forget(schedule);
  }

  toJSON(): Record<string, unknown> {
    return { type: "DehydratedDevices", running: this.running };
  }
}

/** Keeps a copy of an opened secret storage key for the schedule (the caller may wipe its own). */
function retain(schedule: Schedule, key: UnlockedSecretStorageKey | undefined): void {
  if (key === undefined) return;
  schedule.storageKeys.get(key.keyId)?.wipe();
  schedule.storageKeys.delete(key.keyId);
  schedule.storageKeys.set(
    key.keyId,
    new UnlockedSecretStorageKey(key.keyId, key.key.slice(), key.check, key.weakPassphrase),
  );
  for (const [id, oldest] of schedule.storageKeys) {
    if (schedule.storageKeys.size <= MAX_SCHEDULE_STORAGE_KEYS) break;
    oldest.wipe();
    schedule.storageKeys.delete(id);
  }
}

/** Wipes what the schedule holds: its dehydration key and the secret storage keys it kept. */
function forget(schedule: Schedule): void {
  schedule.key.fill(0);
  for (const key of schedule.storageKeys.values()) key.wipe();
  schedule.storageKeys.clear();
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
