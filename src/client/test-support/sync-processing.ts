// A `SyncProcessing` (the client's E2EE step of each sync) over a stub engine whose sync result the
// test chooses, for tests of what the client does with that result (logs, re-checks).
import type { SyncChangesResult } from "../../e2ee/index.ts";
import { emptySyncChangesResult } from "../../e2ee/sync/changes.ts";
import type { Clock } from "../clock.ts";
import { SyncProcessing, type SyncProcessingParts } from "../encryption/sync-processing.ts";
import type { SyncCryptoChanges } from "../sync/hooks.ts";

export interface SyncProcessingHarnessOptions {
  /** What the engine's `receiveSyncChanges` returns, over an empty result; read at each sync. */
  result: () => Partial<SyncChangesResult>;
  warn: (fields: unknown, msg?: string) => void;
  clock?: Clock;
  checkVersion?: () => Promise<void>;
}

export function syncProcessingHarness(opts: SyncProcessingHarnessOptions): {
  sync: SyncProcessing;
  /** The n-th sync's crypto changes, with nothing in them. */
  changes: (n: number) => SyncCryptoChanges;
} {
  const noop = () => {};
  const parts = {
    machine: {
      userId: "@me:hs",
      hasOutdatedUsers: () => false,
      receiveSyncChanges: async (): Promise<SyncChangesResult> => ({
        ...emptySyncChangesResult(),
        ...opts.result(),
      }),
    },
    host: {
      clock: opts.clock ?? { now: () => 0, random: () => 0, sleep: async () => {} },
      rooms: () => [],
      getRoom: () => undefined,
      emitKeyRequest: noop,
      logger: { debug: noop, info: noop, error: noop, warn: opts.warn },
    },
    store: {},
    rooms: {},
    loop: { run: async () => {} },
    backup: { schedule: noop, scheduleAfterSync: noop, checkVersion: opts.checkVersion ?? (async () => {}) },
    historySharing: { retryDue: false },
  } as unknown as SyncProcessingParts;
  return {
    sync: new SyncProcessing(parts),
    changes: (n) => ({
      nextBatch: `s${n}`,
      toDeviceEvents: [],
      deviceLists: { changed: [], left: [] },
      oneTimeKeyCounts: {},
      unusedFallbackKeyTypes: [],
      changedMemberships: [],
      encryptedSenders: [],
    }),
  };
}
