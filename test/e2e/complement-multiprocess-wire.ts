// What a Keyroom process of the multi-process complement-crypto scenarios did on the wire and on
// its store, for the test to check: one-time key uploads (key IDs and a digest of each key, never
// the key), key claims, Olm messages in and out (their message types only), the timeline events
// its syncs carried, and each time it was refused the store's lease. Used by the "main app" (in the
// test process) and by the "NSE" child (complement-nse-process.ts), which prints the same lines.
// A /keys/upload can be held before it reaches the server, so the test can keep one process's
// upload in flight while the other works.
import { createHash } from "node:crypto";
import type { CryptoStoreFactory, FetchLike } from "../../src/client/index.ts";
import { SqliteCryptoStore } from "../../src/store/sqlite/sqlite-store.ts";

export type WireLine =
  /** A /keys/upload with one-time keys: key ID → digest of the signed key, and the server's status. */
  | { t: "upload"; otks: Record<string, string>; status: number }
  /** A /keys/upload is held before it reaches the server (until `release`). */
  | { t: "upload-held" }
  /** A /keys/claim: the devices (`user|device`) whose keys were claimed. */
  | { t: "claim"; devices: string[] }
  /** Encrypted to-device messages a /sync response carried: the sender and the Olm message types. */
  | { t: "olm-in"; sender: string; types: number[] }
  /** Encrypted to-device messages this process sent: recipients (`user|device`) and Olm types. */
  | { t: "olm-out"; to: string[]; types: number[] }
  /** The timeline event IDs of one /sync response. */
  | { t: "sync"; events: string[] }
  /** Taking the crypto store's lease was refused: another process holds it. */
  | { t: "lease-busy" };

export interface Wire {
  readonly fetch: FetchLike;
  /** From now on, hold every /keys/upload before it reaches the server. */
  holdUploads(on: boolean): void;
  /** Lets the held uploads go. */
  release(): void;
}

const digest = (value: unknown): string =>
  createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);

interface Ciphertext {
  type?: unknown;
}

function olmTypes(content: unknown): number[] {
  const c = (content ?? {}) as { ciphertext?: Record<string, Ciphertext> };
  return Object.values(c.ciphertext ?? {}).map((x) => (typeof x.type === "number" ? x.type : -1));
}

/** A fetch that reports what `emit` needs to know and can hold key uploads. */
export function wire(emit: (line: WireLine) => void): Wire {
  let holding = false;
  const held: (() => void)[] = [];
  const release = () => {
    for (const go of held.splice(0)) go();
  };
  const fetchLike: FetchLike = async (input, init) => {
    const path = new URL(input).pathname;
    const body = typeof init.body === "string" ? init.body : undefined;
    if (path.endsWith("/keys/upload") && holding) {
      const go = new Promise<void>((resolve) => held.push(resolve));
      emit({ t: "upload-held" });
      await go;
    }
    if (path.endsWith("/keys/claim") && body !== undefined) {
      const claims = (JSON.parse(body) as { one_time_keys?: Record<string, Record<string, string>> })
        .one_time_keys;
      const devices = Object.entries(claims ?? {}).flatMap(([u, ds]) =>
        Object.keys(ds).map((d) => `${u}|${d}`),
      );
      emit({ t: "claim", devices });
    }
    if (path.includes("/sendToDevice/m.room.encrypted/") && body !== undefined) {
      const messages = (JSON.parse(body) as { messages?: Record<string, Record<string, unknown>> }).messages;
      const entries = Object.entries(messages ?? {}).flatMap(([u, ds]) =>
        Object.entries(ds).map(([d, content]) => ({ to: `${u}|${d}`, types: olmTypes(content) })),
      );
      emit({ t: "olm-out", to: entries.map((e) => e.to), types: entries.flatMap((e) => e.types) });
    }
    const res = await fetch(input, init);
    if (path.endsWith("/keys/upload") && body !== undefined) {
      const otks = (JSON.parse(body) as { one_time_keys?: Record<string, unknown> }).one_time_keys;
      if (otks !== undefined) {
        const digests = Object.fromEntries(Object.entries(otks).map(([id, key]) => [id, digest(key)]));
        emit({ t: "upload", otks: digests, status: res.status });
      }
    }
    if (path.endsWith("/sync") && res.ok) {
      const text = await res.clone().text();
      const sync = JSON.parse(text) as {
        to_device?: { events?: { type?: string; sender?: string; content?: unknown }[] };
        rooms?: { join?: Record<string, { timeline?: { events?: { event_id?: string }[] } }> };
      };
      for (const ev of sync.to_device?.events ?? []) {
        if (ev.type === "m.room.encrypted")
          emit({ t: "olm-in", sender: ev.sender ?? "", types: olmTypes(ev.content) });
      }
      const events = Object.values(sync.rooms?.join ?? {}).flatMap((r) =>
        (r.timeline?.events ?? []).flatMap((e) => (typeof e.event_id === "string" ? [e.event_id] : [])),
      );
      emit({ t: "sync", events });
    }
    return res;
  };
  return {
    fetch: fetchLike,
    holdUploads(on) {
      holding = on;
      if (!on) release();
    },
    release,
  };
}

/** The profile's SQLite crypto store, reporting each refusal of its lease. */
export function observedCryptoStore(directory: string, emit: (line: WireLine) => void): CryptoStoreFactory {
  return async ({ userId, deviceId }) => {
    const store = await SqliteCryptoStore.open({ userId, deviceId, directory });
    return new Proxy(store, {
      get(target, prop) {
        if (prop === "tryAcquireLease") {
          return async (durationMs: number) => {
            const grant = await target.tryAcquireLease(durationMs);
            if (grant === undefined) emit({ t: "lease-busy" });
            return grant;
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  };
}
