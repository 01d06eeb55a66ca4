/**
 * The IndexedDB store's lease (see `StoreLease` in `../store.ts`): an exclusive Web Lock
 * (`navigator.locks`) named after the database, held only while this context works on the store.
 * The browser releases it when the holding tab, worker or service worker goes away, so it needs no
 * expiry. Without Web Locks, only contexts in this JavaScript realm are excluded (a registry).
 *
 * The generation lives in the database (`meta`, `lease_generation`) and is checked in the same
 * transactions as the writes (`idb-store.ts`). As on SQLite, taking the lock raises nothing: the
 * first save of each hold raises it, in that save's own transaction, and so does every save outside
 * the lease (which holds the lock for its one transaction, and is refused while another holds it).
 * A hold that saved nothing costs the other contexts no reload. After a hold that saved, the holder
 * says so on a BroadcastChannel named like the lock, so idle contexts can reload before their next
 * turn.
 */

/** The part of the Web Locks API used here (`navigator.locks` satisfies it). */
export interface WebLockManager {
  request(
    name: string,
    options: { mode: "exclusive"; ifAvailable: true },
    callback: (lock: unknown) => Promise<void>,
  ): Promise<void>;
}

/** The part of `BroadcastChannel` used here; pass a factory in tests. */
export interface LeaseChannel {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  removeEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  close(): void;
}

export type LeaseChannelFactory = (name: string) => LeaseChannel;

const heldInThisRealm = new Set<string>();

export function leaseLockName(database: string): string {
  return `keyroom-crypto-store:${database}`;
}

/** The runtime's BroadcastChannel, if it has one. */
export function defaultChannelFactory(): LeaseChannelFactory | undefined {
  const Channel = (globalThis as { BroadcastChannel?: new (name: string) => LeaseChannel }).BroadcastChannel;
  return Channel === undefined ? undefined : (name) => new Channel(name);
}

/** Holds (or not) this context's Web Lock on one database. */
export class IdbLeaseLock {
  readonly #database: string;
  readonly #name: string;
  readonly #locks: WebLockManager | undefined;
  #release: (() => Promise<void>) | undefined;

  constructor(database: string, locks: WebLockManager | undefined) {
    this.#database = database;
    this.#name = leaseLockName(database);
    this.#locks = locks;
  }

  /** Another handle on the same lock, taken and released apart from this one. */
  sibling(): IdbLeaseLock {
    return new IdbLeaseLock(this.#database, this.#locks);
  }

  get held(): boolean {
    return this.#release !== undefined;
  }

  /** Takes the lock if it is free (true), or says it is not (false); never waits. */
  async tryTake(): Promise<boolean> {
    if (this.#release !== undefined) return true;
    if (heldInThisRealm.has(this.#name)) return false;
    const locks = this.#locks;
    if (locks === undefined) {
      heldInThisRealm.add(this.#name);
      this.#release = async () => {
        heldInThisRealm.delete(this.#name);
      };
      return true;
    }
    let letGo: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    let requestDone: Promise<void> = Promise.resolve();
    const granted = await new Promise<boolean>((resolve, reject) => {
      requestDone = locks.request(this.#name, { mode: "exclusive", ifAvailable: true }, async (lock) => {
        resolve(lock !== null);
        // Holding the callback's promise open holds the lock until `letGo` is called.
        if (lock !== null) await held;
      });
      requestDone.catch(reject);
    });
    if (!granted) return false;
    heldInThisRealm.add(this.#name);
    this.#release = async () => {
      heldInThisRealm.delete(this.#name);
      letGo();
      // Settles once the lock manager has let go (after the callback returns).
      await requestDone.catch(() => {});
    };
    return true;
  }

  async release(): Promise<void> {
    const release = this.#release;
    this.#release = undefined;
    await release?.();
  }
}
