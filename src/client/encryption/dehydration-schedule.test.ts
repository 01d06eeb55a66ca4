// The dehydration schedule (`DehydratedDevices.start` / `stop`) against a fake host: no server, a
// clock whose sleeps end when the test says, and the own-keys refresh held open to stop meanwhile.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeBase64 } from "../../crypto/primitives/index.ts";
import { SecretStorageError } from "../../crypto/secret-storage/index.ts";
import type { OlmMachine, UnlockedSecretStorageKey } from "../../e2ee/index.ts";
import type { Clock } from "../clock.ts";
import type { HttpClient } from "../http.ts";
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
  /** Sleeps waiting on the clock. */
  sleeping(): number;
  wake(): void;
  /** Holds the next own-keys refresh open; the returned function lets it finish. */
  holdRefresh(): () => void;
  /** Secret storage: the value of each secret, by name, and the key IDs it was stored for. */
  readonly secrets: Map<string, { value: string; keyIds: string[] }>;
  /** Makes the next secret storage write fail. */
  failStore: boolean;
}

function fakeHost(): Fake {
  const sleepers: (() => void)[] = [];
  const clock: Clock = {
    now: () => 0,
    random: () => 0.5,
    sleep: (_ms, signal) =>
      new Promise<void>((resolve, reject) => {
        if (signal?.aborted) {
          reject(new Error("aborted"));
          return;
        }
        const entry = () => resolve();
        sleepers.push(entry);
        signal?.addEventListener(
          "abort",
          () => {
            sleepers.splice(sleepers.indexOf(entry), 1);
            reject(new Error("aborted"));
          },
          { once: true },
        );
      }),
  };
  let held: Promise<void> | undefined;
  const fake: Fake = {
    sealedUnder: [],
    uploads: 0,
    secrets: new Map(),
    failStore: false,
    sleeping: () => sleepers.length,
    wake: () => {
      for (const s of sleepers.splice(0)) s();
    },
    holdRefresh: () => {
      let release = () => {};
      held = new Promise<void>((r) => {
        release = r;
      });
      return release;
    },
    host: {
      http: {
        request: async () => {
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
        get: async (name: string, key: UnlockedSecretStorageKey) => {
          const entry = fake.secrets.get(name);
          if (entry === undefined || !entry.keyIds.includes(key.keyId)) {
            throw new SecretStorageError("SECRET_MISSING", "not stored under this key");
          }
          return entry.value;
        },
        store: async (name: string, value: string, keys: readonly UnlockedSecretStorageKey[]) => {
          if (fake.failStore) throw new Error("account data upload failed");
          fake.secrets.set(name, { value, keyIds: keys.map((k) => k.keyId) });
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
    },
  };
  return fake;
}

/** Lets pending promise callbacks run (no timers). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

const KEY = new Uint8Array(32).fill(7);

/** A secret storage key as the fake storage sees it (by ID only). */
const storageKey = (keyId: string) => ({ keyId }) as unknown as UnlockedSecretStorageKey;

/** The dehydration key stored in the fake secret storage, and the key IDs it is stored for. */
function storedKey(fake: Fake): { key: Uint8Array; keyIds: string[] } {
  const entry = fake.secrets.get(DEHYDRATION_SECRET_NAME);
  assert.ok(entry !== undefined, "a dehydration key is stored");
  return { key: decodeBase64(entry.value), keyIds: entry.keyIds };
}

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
    await devices.start({ key: KEY, rehydrate: false, periodMs: 60_000 });
    release();
    await first;
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
});
