/**
 * What the conformance suite runs against: a target names a back end and makes fresh locations
 * to open stores on; each area's tests receive the target and a `withStore` helper.
 */

import type { CryptoStore } from "../store.ts";
import { ALICE, DEVICE } from "./samples.ts";

export interface ConformanceOpenOptions {
  readonly userId: string;
  readonly deviceId?: string;
  /** Encrypting targets protect the store with it (fixtures may use few KDF iterations). */
  readonly passphrase?: string;
}

/** One store location; `open` may be called many times on it (reopen = restart). */
export interface ConformanceFixture {
  open(options: ConformanceOpenOptions): Promise<CryptoStore>;
  cleanup(): Promise<void>;
}

export interface ConformanceTarget {
  readonly name: string;
  /** A fresh, empty location on every call. */
  createFixture(): Promise<ConformanceFixture>;
  /** The target encrypts at rest and checks the passphrase. */
  readonly encrypted: boolean;
  /** Inbound sessions in the bulk import test (default 100 000). */
  readonly bulkCount?: number;
  /**
   * Several handles (processes, tabs) may open the location at once and take turns through the
   * lease (SQLite, IndexedDB). False: a second open is refused with `StoreLockedError("LOCKED")`.
   */
  readonly shared?: boolean;
}

/** What every area of the suite is handed. */
export interface ConformanceSuite {
  readonly target: ConformanceTarget;
  /** Opens a store on a fresh location, runs `body`, then closes it and cleans the location up. */
  withStore(
    body: (store: CryptoStore, fixture: ConformanceFixture) => Promise<void>,
    options?: ConformanceOpenOptions,
  ): Promise<void>;
}

export function conformanceSuite(target: ConformanceTarget): ConformanceSuite {
  return {
    target,
    async withStore(body, options = { userId: ALICE, deviceId: DEVICE }) {
      const fixture = await target.createFixture();
      const store = await fixture.open(options);
      try {
        await body(store, fixture);
      } finally {
        await store.close();
        await fixture.cleanup();
      }
    },
  };
}
