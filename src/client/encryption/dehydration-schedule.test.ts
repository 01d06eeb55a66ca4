// The dehydration schedule (`DehydratedDevices.start` / `stop`) against a fake host: no server, a
// clock whose sleeps end when the test says, and the own-keys refresh held open to stop meanwhile.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeBase64, encodeBase64 } from "../../crypto/primitives/index.ts";
import { SecretStorageError } from "../../crypto/secret-storage/index.ts";
import { DehydrationError, type OlmMachine, UnlockedSecretStorageKey } from "../../e2ee/index.ts";
import { MatrixError } from "../errors.ts";
import type { HttpClient } from "../http.ts";
import { manualClock } from "../test-support/manual-clock.ts";
import { DEHYDRATION_SECRET_NAME } from "./constants.ts";
import { DehydratedDevicesImpl } from "./dehydration-impl.ts";
import type { DehydrationHost } from "./dehydration-types.ts";
import type { SecretStorage } from "./secret-storage.ts";

interface Fake {
  readonly host: DehydrationHost;
  /** The keys the engine was asked to seal a device under, copied when asked. */
  readonly sealedUnder: Uint8Array[];
  /** Devices uploaded. */
  uploads: number;
  /** The method of each request, in order. */
  readonly methods: string[];
  /** Sleeps waiting on the clock. */
  sleeping(): number;
  wake(): void;
  /** Holds the next own-keys refresh open; the returned function lets it finish. */
  holdRefresh(): () => void;
  /** Holds the next secret storage write open (before it lands); the returned function lets it finish. */
  holdStore(): () => void;
  /**
   * Holds the next GET of the dehydrated device (rehydration: the server has none) open; the
   * returned function lets it finish.
   */
  holdGet(): () => void;
  /** Secret storage: each secret, by name, as its value under each key ID it is stored for. */
  readonly secrets: Map<string, Map<string, string>>;
  /** Makes the next secret storage write fail. */
  failStore: boolean;
  /** The default secret storage key's ID (none set: any key is taken). */
  defaultKeyId: string | undefined;
  /** The messages logged as warnings. */
  readonly warnings: string[];
}

function fakeHost(): Fake {
  const clock = manualClock(() => 0);
  let held: Promise<void> | undefined;
  let heldStore: Promise<void> | undefined;
  let heldGet: Promise<void> | undefined;
  const hold = (): { promise: Promise<void>; release: () => void } => {
    let release = () => {};
    const promise = new Promise<void>((r) => {
      release = r;
    });
    return { promise, release };
  };
  const fake: Fake = {
    sealedUnder: [],
    uploads: 0,
    methods: [],
    secrets: new Map(),
    failStore: false,
    defaultKeyId: undefined,
    warnings: [],
    sleeping: () => clock.sleeping(),
    wake: () => clock.wake(),
    holdRefresh: () => {
      const h = hold();
      held = h.promise;
      return h.release;
    },
    holdStore: () => {
      const h = hold();
      heldStore = h.promise;
      return h.release;
    },
    holdGet: () => {
      const h = hold();
      heldGet = h.promise;
      return h.release;
    },
    host: {
      http: {
        request: async (request: { method: string }) => {
          fake.methods.push(request.method);
          if (request.method === "GET") {
            const h = heldGet;
            heldGet = undefined;
            await h;
            throw new MatrixError(404, { errcode: "M_NOT_FOUND" });
          }
          fake.uploads++;
          return {};
        },
      } as unknown as HttpClient,
      machine: {
        userId: "@a:x",
        dehydration: {
          create: async (key: Uint8Array) => {
            fake.sealedUnder.push(key.slice());
            return { deviceId: "DEHY", body: {}, crossSigned: true };
          },
        },
      } as unknown as OlmMachine,
      clock,
      secretStorage: {
        defaultKeyId: async () => fake.defaultKeyId,
        get: async (name: string, key: UnlockedSecretStorageKey) => {
          const value = fake.secrets.get(name)?.get(key.keyId);
          if (value === undefined)
            throw new SecretStorageError("SECRET_MISSING", "not stored under this key");
          return value;
        },
        store: async (
          name: string,
          value: string,
          keys: readonly UnlockedSecretStorageKey[],
          options: { replace?: boolean } = {},
        ) => {
          const h = heldStore;
          heldStore = undefined;
          await h;
          if (fake.failStore) throw new Error("account data upload failed");
          // As the real one: the entries of other keys are kept unless `replace`.
          const entry = new Map(options.replace === true ? [] : fake.secrets.get(name));
          for (const k of keys) entry.set(k.keyId, value);
          fake.secrets.set(name, entry);
        },
      } as unknown as SecretStorage,
      refreshOwnKeys: async () => {
        const h = held;
        held = undefined;
        await h;
      },
      flush: async () => {},
      emitRedecrypted: async () => {},
      reportError: (e) => {
        throw e;
      },
      logger: {
        debug: () => {},
        info: () => {},
        warn: (_obj, msg) => void fake.warnings.push(msg ?? ""),
        error: () => {},
      },
    },
  };
  return fake;
}

/**
 * Lets pending promise callbacks run until none is left (the fake host does no I/O: what is not
 * done then waits on a hold or the clock). No timer: `setImmediate` runs after the microtasks.
 */
async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

const KEY = new Uint8Array(32).fill(7);

/** A secret storage key as the fake storage sees it (by ID only). */
const storageKey = (keyId: string) => new UnlockedSecretStorageKey(keyId, new Uint8Array(32), "verified");

/** A schedule (no rehydration, a minute's period) started under secret storage key `keyId`, the default one. */
async function runningUnderDefault(keyId: string): Promise<{ fake: Fake; devices: DehydratedDevicesImpl }> {
  const fake = fakeHost();
  const devices = new DehydratedDevicesImpl(fake.host);
  fake.defaultKeyId = keyId;
  await devices.start({ secretStorageKey: storageKey(keyId), rehydrate: false, periodMs: 60_000 });
  return { fake, devices };
}

/** The dehydration key stored in the fake secret storage (the same under each key), and the key IDs it is stored for. */
function storedKey(fake: Fake): { key: Uint8Array; keyIds: string[] } {
  const entry = fake.secrets.get(DEHYDRATION_SECRET_NAME);
  assert.ok(entry !== undefined && entry.size > 0, "a dehydration key is stored");
  const values = new Set(entry.values());
  assert.equal(values.size, 1, "the same key under every secret storage key");
  return { key: decodeBase64([...values][0] as string), keyIds: [...entry.keys()].sort() };
}

/** Another login's write: `key` stored as the dehydration key under `keyIds` alone. */
function storedElsewhere(fake: Fake, keyIds: readonly string[], key: Uint8Array): void {
  const text = encodeBase64(key);
  fake.secrets.set(DEHYDRATION_SECRET_NAME, new Map(keyIds.map((id) => [id, text])));
}

/** A dehydration key other than any the schedule made (the fake's random keys are never all 9s). */
const OTHER_LOGINS_KEY = new Uint8Array(32).fill(9);

describe("the dehydration schedule", () => {
  it("a rotation under way when stop() is called still seals the new device under the real key", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ key: KEY, rehydrate: false, periodMs: 60_000 });
    assert.equal(fake.sleeping(), 1);
    const release = fake.holdRefresh();
    fake.wake(); // the period is over: the rotation starts and waits for our keys
    await settle();
    devices.stop(); // the client closes, or the app stops dehydration
    release();
    await settle();
    assert.equal(fake.sealedUnder.length, 2);
    assert.deepEqual(fake.sealedUnder[1], KEY, "the device uploaded is sealed under the dehydration key");
    assert.equal(fake.sleeping(), 0);
  });

  it("stop() while start() is under way leaves no schedule running", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    const release = fake.holdRefresh();
    const started = devices.start({ key: KEY, rehydrate: false, periodMs: 60_000 });
    await settle();
    devices.stop(); // e.g. the client was closed right after login
    release();
    await started;
    await settle();
    assert.equal(devices.running, false);
    assert.equal(fake.sleeping(), 0, "no rotation waits on the clock");
  });

  it("two start() calls at once leave one schedule, which stop() ends", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    const release = fake.holdRefresh();
    const first = devices.start({ key: KEY, rehydrate: false, periodMs: 60_000 });
    await settle();
    const second = devices.start({ key: KEY, rehydrate: false, periodMs: 60_000 });
    await settle();
    release(); // the second waits for the first one's upload: they land in order
    await Promise.all([first, second]);
    await settle();
    assert.equal(fake.sleeping(), 1, "one rotation schedule");
    devices.stop();
    await settle();
    assert.equal(fake.sleeping(), 0);
    assert.equal(devices.running, false);
  });

  it("keysReplaced: a fresh key under the new storage key, a device sealed under it now and at each rotation", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ secretStorageKey: storageKey("old"), rehydrate: false, periodMs: 60_000 });
    const first = storedKey(fake).key;
    assert.deepEqual(fake.sealedUnder[0], first);

    fake.defaultKeyId = "new"; // as the client calls it: once the new key is the default
    await devices.keysReplaced({ secretStorageKey: storageKey("new") });
    const fresh = storedKey(fake);
    assert.deepEqual(fresh.keyIds, ["new"], "stored under the new default key only");
    assert.notDeepEqual(fresh.key, first);
    assert.equal(fake.sealedUnder.length, 2, "the device is replaced at once");
    assert.deepEqual(fake.sealedUnder[1], fresh.key);

    fake.wake(); // the next rotation
    await settle();
    assert.equal(fake.sealedUnder.length, 3);
    assert.deepEqual(fake.sealedUnder[2], fresh.key, "the schedule goes on with the new key");
    devices.stop();
  });

  it("keysReplaced: a caller's key gets a new device on an identity reset only", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ key: KEY, rehydrate: false, periodMs: 60_000 });
    await devices.keysReplaced({ secretStorageKey: storageKey("new") });
    assert.equal(fake.sealedUnder.length, 1, "a key kept by the caller is not in secret storage");
    assert.equal(fake.secrets.size, 0);
    await devices.keysReplaced({ secretStorageKey: storageKey("new"), identityReset: true });
    assert.equal(fake.sealedUnder.length, 2, "a new device, signed by the new self-signing key");
    assert.deepEqual(fake.sealedUnder[1], KEY);
    devices.stop();
    await devices.keysReplaced({ identityReset: true });
    assert.equal(fake.sealedUnder.length, 2, "nothing when dehydration is not running");
  });

  it("a rotation under way when the keys are replaced lands before the fresh device, none after", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ secretStorageKey: storageKey("old"), rehydrate: false, periodMs: 60_000 });
    const old = storedKey(fake).key;
    const release = fake.holdRefresh();
    fake.wake(); // a rotation starts and waits for our keys
    await settle();
    const replaced = devices.keysReplaced({ secretStorageKey: storageKey("new") });
    await settle(); // the fresh key is stored: its upload waits for the rotation's
    release();
    await replaced;
    await settle();
    const fresh = storedKey(fake).key;
    assert.deepEqual(
      fake.sealedUnder.slice(1),
      [old, fresh],
      "the device on the server at the end is sealed under the stored key",
    );
    devices.stop();
  });

  it("keysReplaced: a key that cannot be stored stops the schedule instead of sealing on under the old one", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ secretStorageKey: storageKey("old"), rehydrate: false, periodMs: 60_000 });
    fake.failStore = true;
    await assert.rejects(devices.keysReplaced({ secretStorageKey: storageKey("new") }), /upload failed/);
    assert.equal(devices.running, false);
    assert.equal(fake.sleeping(), 0);
    assert.equal(fake.sealedUnder.length, 1);
  });

  it("defaultKeyChanging: the schedule's key is stored under the new default key too, and rotations seal under it", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ secretStorageKey: storageKey("old"), rehydrate: false, periodMs: 60_000 });
    const first = storedKey(fake).key;

    await devices.defaultKeyChanging("new", storageKey("new"));
    fake.defaultKeyId = "new"; // then setDefaultKey moves the default
    const after = storedKey(fake);
    assert.deepEqual(after.keyIds, ["new", "old"], "a login opening the new default key reads it");
    assert.deepEqual(after.key, first, "the key the device on the server is sealed under");
    assert.equal(fake.sealedUnder.length, 1, "no new device needed");

    fake.wake(); // the next rotation
    await settle();
    assert.deepEqual(fake.sealedUnder[1], first);
    // Back to the old key, or to a third one without its opened key: it is the schedule's now.
    await assert.rejects(
      devices.defaultKeyChanging("old", undefined),
      (e: unknown) => e instanceof SecretStorageError && e.code === "BAD_ARGUMENT",
    );
    devices.stop();
  });

  it("defaultKeyChanging without the opened key is refused only while the schedule's key is in secret storage under another key", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ secretStorageKey: storageKey("old"), rehydrate: false, periodMs: 60_000 });
    await assert.rejects(
      devices.defaultKeyChanging("new", undefined),
      (e: unknown) => e instanceof SecretStorageError && e.code === "BAD_ARGUMENT",
    );
    assert.deepEqual(storedKey(fake).keyIds, ["old"], "nothing stored");
    await devices.defaultKeyChanging("old", undefined); // its own key
    devices.stop();
    await devices.defaultKeyChanging("new", undefined); // no schedule
    await devices.start({ key: KEY, rehydrate: false, periodMs: 60_000 });
    await devices.defaultKeyChanging("new", undefined); // a caller's key is not in secret storage
    assert.deepEqual(storedKey(fake).keyIds, ["old"]);
    devices.stop();
  });

  it("keysReplaced while start() is under way: its device is sealed under the fresh key, and the schedule goes on with it", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    const release = fake.holdRefresh(); // start()'s upload waits for our keys
    const started = devices.start({
      secretStorageKey: storageKey("old"),
      rehydrate: false,
      periodMs: 60_000,
    });
    await settle();
    const old = storedKey(fake).key;
    fake.defaultKeyId = "new"; // recovery.changeRecoveryKey() moved the default, then:
    const replaced = devices.keysReplaced({ secretStorageKey: storageKey("new") });
    await settle();
    release();
    await Promise.all([started, replaced]);
    const fresh = storedKey(fake);
    assert.deepEqual(fresh.keyIds, ["new"]);
    assert.notDeepEqual(fresh.key, old);
    assert.deepEqual(
      fake.sealedUnder.at(-1),
      fresh.key,
      "the device on the server opens with the stored key",
    );
    assert.equal(devices.running, true);
    fake.wake(); // the next rotation
    await settle();
    assert.deepEqual(fake.sealedUnder.at(-1), fresh.key, "the schedule seals under the fresh key");
    devices.stop();
  });

  it("defaultKeyChanging while start() stores a new key: once stored, it is stored under the new default key too", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    const release = fake.holdStore(); // start() finds no key and stores one: held
    const started = devices.start({
      secretStorageKey: storageKey("old"),
      rehydrate: false,
      periodMs: 60_000,
    });
    await settle();
    const moved = devices.defaultKeyChanging("new", storageKey("new")); // secretStorage.setDefaultKey(key)
    await settle();
    release();
    // setDefaultKey moves the default once the key is stored under it.
    await moved.then(() => {
      fake.defaultKeyId = "new";
    });
    await started;
    const stored = storedKey(fake);
    assert.deepEqual(stored.keyIds, ["new", "old"]);
    assert.deepEqual(fake.sealedUnder.at(-1), stored.key);
    await assert.rejects(
      devices.defaultKeyChanging("other", undefined),
      (e: unknown) => e instanceof SecretStorageError && e.code === "BAD_ARGUMENT",
    );
    devices.stop();
  });

  it("a rotation that wakes while keysReplaced stores the fresh key does not land the old key after it", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ secretStorageKey: storageKey("old"), rehydrate: false, periodMs: 60_000 });
    const release = fake.holdStore();
    const replaced = devices.keysReplaced({ secretStorageKey: storageKey("new") });
    await settle();
    fake.wake(); // the period ends while the fresh key is being stored
    await settle();
    release();
    await replaced;
    await settle();
    const fresh = storedKey(fake).key;
    assert.deepEqual(
      fake.sealedUnder.at(-1),
      fresh,
      "the last device uploaded is sealed under the stored key",
    );
    devices.stop();
  });

  it("delete() ends the schedule, and lands after the upload under way", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ key: KEY, rehydrate: false, periodMs: 60_000 });
    const release = fake.holdRefresh();
    fake.wake(); // a rotation starts and waits for our keys
    await settle();
    const deleted = devices.delete();
    await settle();
    release();
    assert.equal(await deleted, true);
    await settle();
    assert.deepEqual(fake.methods, ["PUT", "PUT", "DELETE"], "no device left on the server");
    assert.equal(devices.running, false);
    assert.equal(fake.sleeping(), 0, "no rotation uploads one again");
  });

  it("pauseAndWait() (a logout): the upload under way lands, none after; resume() (the logout failed) rotates under the same key; stop() while paused wipes it", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ key: KEY, rehydrate: false, periodMs: 60_000 });
    const release = fake.holdRefresh();
    fake.wake(); // a rotation starts and waits for our keys
    await settle();
    const paused = devices.pauseAndWait();
    release();
    await paused;
    assert.equal(fake.sealedUnder.length, 2, "the upload under way landed before the pause ended");
    assert.equal(devices.running, false);
    assert.equal(fake.sleeping(), 0);
    devices.resume();
    assert.equal(devices.running, true);
    fake.wake();
    await settle();
    assert.deepEqual(fake.sealedUnder[2], KEY, "the same key, not a wiped one");
    await devices.pauseAndWait();
    devices.stop();
    devices.resume(); // stopped meanwhile: nothing to resume
    assert.equal(devices.running, false);
    assert.equal(fake.sleeping(), 0);
  });

  it("start() with a secret storage key that is not the default one is refused, and nothing is stored or uploaded", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    fake.defaultKeyId = "new"; // the default moved after the app opened "old"
    await assert.rejects(
      devices.start({ secretStorageKey: storageKey("old"), rehydrate: false, periodMs: 60_000 }),
      (e: unknown) => e instanceof DehydrationError && e.code === "BAD_ARGUMENT",
    );
    assert.equal(fake.secrets.size, 0);
    assert.equal(fake.methods.length, 0);
    assert.equal(devices.running, false);
    await devices.start({ secretStorageKey: storageKey("new"), rehydrate: false, periodMs: 60_000 });
    assert.deepEqual(storedKey(fake).keyIds, ["new"]);
    devices.stop();
  });

  it("defaultKeyMoved to a key this client does not hold: the schedule stops with a warning, and seals nothing more", async () => {
    const { fake, devices } = await runningUnderDefault("old");
    // Another login changed the recovery key: a fresh dehydration key under "elsewhere" only.
    fake.defaultKeyId = "elsewhere";
    await devices.defaultKeyMoved("elsewhere");
    assert.equal(devices.running, false);
    assert.equal(fake.sleeping(), 0, "no rotation under the old key");
    assert.equal(fake.sealedUnder.length, 1);
    assert.equal(fake.warnings.length, 1);
    assert.match(
      fake.warnings[0] as string,
      /dehydration stopped: another login moved the default secret storage key/,
    );
  });

  it("defaultKeyMoved to no default key (removed by another login): the schedule stops with a warning, and seals nothing more", async () => {
    const { fake, devices } = await runningUnderDefault("old");
    fake.defaultKeyId = undefined; // recovery turned off elsewhere: `m.secret_storage.default_key` is `{}`
    await devices.defaultKeyMoved(undefined);
    assert.equal(devices.running, false);
    assert.equal(fake.sleeping(), 0, "no rotation under the old key");
    assert.equal(fake.sealedUnder.length, 1);
    assert.equal(fake.warnings.length, 1);
    assert.match(
      fake.warnings[0] as string,
      /dehydration stopped: another login removed the default secret storage key/,
    );
  });

  it("defaultKeyMoved to no default key, for a schedule started while none was set: it goes on", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ secretStorageKey: storageKey("old"), rehydrate: false, periodMs: 60_000 });
    await devices.defaultKeyMoved(undefined); // an old deletion, as the first sync shows it
    assert.equal(devices.running, true);
    assert.deepEqual(fake.warnings, []);
    devices.stop();
  });

  it("defaultKeyMoved to a key the schedule holds: the dehydration key stored under it is read and sealed under", async () => {
    const { fake, devices } = await runningUnderDefault("a");
    await devices.defaultKeyChanging("b", storageKey("b")); // this login: setDefaultKey(b)
    fake.defaultKeyId = "b";
    const first = storedKey(fake).key;
    // Another login stores a fresh key under "a" alone, uploads its device, and moves the default back.
    const fresh = new Uint8Array(32).fill(9);
    fake.secrets.set(DEHYDRATION_SECRET_NAME, new Map([["a", Buffer.from(fresh).toString("base64")]]));
    fake.defaultKeyId = "a";
    await devices.defaultKeyMoved("a");
    assert.equal(devices.running, true);
    assert.deepEqual(fake.warnings, []);
    assert.equal(fake.sealedUnder.length, 1, "the other login's device stays");
    fake.wake(); // the next rotation
    await settle();
    assert.deepEqual(fake.sealedUnder[1], fresh, "sealed under the key the new default holds");
    assert.notDeepEqual(fresh, first);
    devices.stop();
  });

  it("defaultKeyMoved as sync saw it, but the server's default is the schedule's again: nothing changes", async () => {
    const { fake, devices } = await runningUnderDefault("old");
    await devices.defaultKeyMoved("old"); // our own key echoed
    await devices.defaultKeyMoved("passing"); // moved away and back since that sync
    assert.equal(devices.running, true);
    assert.deepEqual(fake.warnings, []);
    devices.stop();
    await devices.start({ key: KEY, rehydrate: false, periodMs: 60_000 });
    fake.defaultKeyId = "elsewhere";
    await devices.defaultKeyMoved("elsewhere"); // a caller's key is not in secret storage
    assert.equal(devices.running, true);
    devices.stop();
  });

  it("a rotation seals under the dehydration key stored now: another login replaced it under the same default key, no sync seen", async () => {
    const { fake, devices } = await runningUnderDefault("old");
    // Moved to "passing" and back, a fresh key stored and its device uploaded, between two syncs;
    // or a key made anew under the same default key.
    storedElsewhere(fake, ["old"], OTHER_LOGINS_KEY);
    fake.wake(); // the next rotation
    await settle();
    assert.deepEqual(fake.sealedUnder[1], OTHER_LOGINS_KEY, "not the key read a period ago");
    assert.equal(devices.running, true);
    assert.deepEqual(fake.warnings, []);
    devices.stop();
  });

  it("defaultKeyMoved to the schedule's own key checks it all the same: a schedule started with no default follows it from then on", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ secretStorageKey: storageKey("old"), rehydrate: false, periodMs: 60_000 });
    fake.defaultKeyId = "old"; // another login made it the default
    await devices.defaultKeyMoved("old");
    fake.defaultKeyId = undefined; // and removed it again
    await devices.defaultKeyMoved(undefined);
    assert.equal(devices.running, false, "its key was the default: removing it stops the schedule");
    assert.equal(fake.warnings.length, 1);
  });

  it("defaultKeyChanging stores the dehydration key secret storage holds now under the new key, not a stale one", async () => {
    const { fake, devices } = await runningUnderDefault("a");
    storedElsewhere(fake, ["a"], OTHER_LOGINS_KEY); // another login's, its device on the server
    await devices.defaultKeyChanging("b", storageKey("b")); // this login: setDefaultKey(b)
    fake.defaultKeyId = "b";
    const stored = storedKey(fake); // the same key under each
    assert.deepEqual(stored.keyIds, ["a", "b"]);
    assert.deepEqual(stored.key, OTHER_LOGINS_KEY);
    fake.wake();
    await settle();
    assert.deepEqual(fake.sealedUnder.at(-1), OTHER_LOGINS_KEY);
    devices.stop();
  });

  it("a rotation while changeRecoveryKey() carries the dehydration key over to the new key alone (the default not moved yet) goes on under it", async () => {
    const { fake, devices } = await runningUnderDefault("old");
    const first = storedKey(fake).key;
    storedElsewhere(fake, ["new"], first); // the carry-over: stored under the new key only
    fake.wake(); // the rotation reads under "old", the default still: nothing there
    await settle();
    assert.equal(devices.running, true, "no stop on a write of this login under way");
    assert.deepEqual(fake.warnings, []);
    assert.deepEqual(fake.sealedUnder[1], first);
    await devices.defaultKeyChanging("new", storageKey("new")); // then setDefaultKey(new)
    assert.deepEqual(storedKey(fake), { key: first, keyIds: ["new"] });
    devices.stop();
  });

  it("start(): the default key moved by another login while it rehydrated, no sync seen: it seals nothing under the old key, and stops with a warning", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    fake.defaultKeyId = "old";
    const release = fake.holdGet(); // its key read, the rehydration waits
    const started = devices.start({ secretStorageKey: storageKey("old"), periodMs: 60_000 });
    await settle();
    // Elsewhere: changeRecoveryKey(), a fresh key under "elsewhere" alone, its device uploaded.
    storedElsewhere(fake, ["elsewhere"], OTHER_LOGINS_KEY);
    fake.defaultKeyId = "elsewhere";
    release();
    assert.equal(await started, undefined, "no device on the server to rehydrate");
    assert.deepEqual(fake.sealedUnder, [], "the other login's device stays");
    assert.equal(devices.running, false);
    assert.equal(fake.sleeping(), 0);
    assert.equal(fake.warnings.length, 1);
  });

  it("start(): a fresh dehydration key stored under the default key while it rehydrated: its first device is sealed under that one", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    fake.defaultKeyId = "old";
    const release = fake.holdGet();
    const started = devices.start({ secretStorageKey: storageKey("old"), periodMs: 60_000 });
    await settle();
    storedElsewhere(fake, ["old"], OTHER_LOGINS_KEY); // another login's, made anew
    release();
    await started;
    assert.deepEqual(fake.sealedUnder, [OTHER_LOGINS_KEY]);
    assert.equal(devices.running, true);
    fake.wake();
    await settle();
    assert.deepEqual(fake.sealedUnder[1], OTHER_LOGINS_KEY, "and rotated under it");
    devices.stop();
  });

  it("setDefaultKey(key) with no default key set: a rotation before the default moved goes on", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    await devices.start({ secretStorageKey: storageKey("old"), rehydrate: false, periodMs: 60_000 });
    await devices.defaultKeyChanging("new", storageKey("new")); // the default is set after this
    fake.wake();
    await settle();
    assert.equal(devices.running, true, "no default key is not a removed one");
    assert.deepEqual(fake.warnings, []);
    assert.equal(fake.sealedUnder.length, 2);
    devices.stop();
  });

  it("defaultKeyMoved while start() is under way: the schedule stops once its first upload landed, and rotates no more", async () => {
    const fake = fakeHost();
    const devices = new DehydratedDevicesImpl(fake.host);
    fake.defaultKeyId = "old";
    const release = fake.holdRefresh(); // start()'s upload waits for our keys
    const started = devices.start({
      secretStorageKey: storageKey("old"),
      rehydrate: false,
      periodMs: 60_000,
    });
    await settle();
    fake.defaultKeyId = "elsewhere";
    const moved = devices.defaultKeyMoved("elsewhere");
    release();
    await Promise.all([started, moved]);
    assert.equal(devices.running, false);
    assert.equal(fake.sleeping(), 0);
    assert.equal(fake.warnings.length, 1);
  });
});
