// Browsers, workers and other non-Node runtimes: both stores in IndexedDB, so a reload or a browser
// restart keeps the session, the device and its keys. Without a passphrase the crypto store's key
// is wrapped by a non-extractable Web Crypto key (see src/store/indexeddb/store-key.ts).
import { IndexedDbCryptoStore } from "../../store/indexeddb/idb-store.ts";
import { IndexedDbClientStore } from "../client-store/idb-store.ts";
import { ClientCryptoError } from "../encryption/errors.ts";
import type { ClientPlatform, WorkContext } from "./types.ts";

/** The IndexedDB database of `userId`'s crypto store when the app names none. */
export const defaultCryptoDbName = (userId: string): string => `keyroom-crypto:${userId}`;

/**
 * Browsers have no async context tracking (no AsyncLocalStorage): no code is known as the work.
 * A `close()`, `stopSync()` or `logout()` awaited from a sync listener is then a stop like any
 * other, and the sync loop stops waiting for the listeners of the response being handled once a
 * stop is asked for (`tracked: false`; src/client/sync/listener-waits.ts): that response's
 * position is not saved, so it comes again at the next start.
 */
export function untrackedWorkContext(): WorkContext {
  return { run: (fn) => fn(), exit: (fn) => fn(), active: false, tracked: false };
}

export const platform: ClientPlatform = {
  name: "browser",
  workContext: untrackedWorkContext,
  defaultClientStore: () => new IndexedDbClientStore(),
  async openCryptoStore({ location, passphrase, userId, deviceId }) {
    if (location !== undefined) {
      throw new ClientCryptoError(
        "STORE_UNAVAILABLE",
        "a crypto store directory needs Node; in a browser leave encryption.store out (IndexedDB) or pass a store",
      );
    }
    return IndexedDbCryptoStore.open({
      name: defaultCryptoDbName(userId),
      userId,
      ...(deviceId !== undefined ? { deviceId } : {}),
      ...(passphrase !== undefined ? { passphrase } : {}),
    });
  },
};
