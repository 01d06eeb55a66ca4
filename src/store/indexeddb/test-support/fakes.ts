// Stand-ins for the browser APIs the IndexedDB store's lease uses, for tests in Node: every
// "context" (store instance) of a test shares one FakeLocks and one FakeChannels.
import type { LeaseChannel, WebLockManager } from "../lease.ts";

/** BroadcastChannel stand-ins: a message reaches every other channel of the same name. */
export class FakeChannels {
  readonly #all = new Set<{ name: string; listeners: Set<(e: { data: unknown }) => void> }>();
  get open(): number {
    return this.#all.size;
  }
  readonly factory = (name: string): LeaseChannel => {
    const self = { name, listeners: new Set<(e: { data: unknown }) => void>() };
    this.#all.add(self);
    return {
      postMessage: (data) => {
        for (const other of this.#all) {
          if (other !== self && other.name === name) for (const l of other.listeners) l({ data });
        }
      },
      addEventListener: (_t, l) => self.listeners.add(l),
      removeEventListener: (_t, l) => self.listeners.delete(l),
      close: () => this.#all.delete(self),
    };
  };
}

/** A Web Locks stand-in: one holder per name, `ifAvailable` gets null when taken. */
export class FakeLocks implements WebLockManager {
  readonly held = new Set<string>();
  async request(
    name: string,
    _o: { mode: "exclusive"; ifAvailable: true },
    cb: (lock: unknown) => Promise<void>,
  ) {
    if (this.held.has(name)) return cb(null);
    this.held.add(name);
    try {
      await cb({ name });
    } finally {
      this.held.delete(name);
    }
  }
}
