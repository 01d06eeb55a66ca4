// The dehydration schedule (`DehydratedDevices.start` / `stop`) against a fake host: no server, a
// clock whose sleeps end when the test says, and the own-keys refresh held open to stop meanwhile.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { OlmMachine } from "../../e2ee/index.ts";
import type { Clock } from "../clock.ts";
import type { HttpClient } from "../http.ts";
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
      secretStorage: {} as SecretStorage,
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
});
