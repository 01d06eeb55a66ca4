/**
 * One client per IndexedDB store. In browsers with the Web Locks API (`navigator.locks`) an
 * exclusive lock named after the database keeps other tabs and workers out, and the browser
 * releases it when the holder goes away. Without Web Locks, only opens in this JavaScript realm are
 * excluded (a registry of open names).
 */
import { StoreLockedError } from "../errors.ts";

/** The part of the Web Locks API used here (`navigator.locks` satisfies it). */
export interface WebLockManager {
  request(
    name: string,
    options: { mode: "exclusive"; ifAvailable: true },
    callback: (lock: unknown) => Promise<void>,
  ): Promise<void>;
}

const heldInThisRealm = new Set<string>();

/** Takes the lock for `name` or throws `StoreLockedError`; returns the release function. */
export async function acquireIdbLock(
  name: string,
  locks: WebLockManager | undefined,
): Promise<() => Promise<void>> {
  const lockName = `keyroom-crypto-store:${name}`;
  if (heldInThisRealm.has(lockName)) throw new StoreLockedError(`IndexedDB database "${name}"`);
  if (locks === undefined) {
    heldInThisRealm.add(lockName);
    return async () => {
      heldInThisRealm.delete(lockName);
    };
  }
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let requestDone: Promise<void> = Promise.resolve();
  const granted = await new Promise<boolean>((resolve, reject) => {
    requestDone = locks.request(lockName, { mode: "exclusive", ifAvailable: true }, async (lock) => {
      resolve(lock !== null);
      // Holding the callback's promise open holds the lock until `release` is called.
      if (lock !== null) await held;
    });
    requestDone.catch(reject);
  });
  if (!granted) throw new StoreLockedError(`IndexedDB database "${name}"`);
  heldInThisRealm.add(lockName);
  return async () => {
    heldInThisRealm.delete(lockName);
    release();
    // Resolves once the lock manager has let go (the request's promise settles after the callback).
    await requestDone.catch(() => {});
  };
}
