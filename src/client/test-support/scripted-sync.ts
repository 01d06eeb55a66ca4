// A client on a SQLite client store whose every request is answered, in order, with the given
// /sync bodies (JSON text as written, so what JSON.stringify would change stays in): for tests of
// what the client does with one response and keeps across a restart.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { MatrixClient } from "../client.ts";
import type { MatrixClientOptions } from "../client-options.ts";
import { type ClientStore, MemoryClientStore } from "../client-store/index.ts";
import { SqliteClientStore } from "../client-store/sqlite-store.ts";
import type { Clock } from "../clock.ts";

/** A clock at 0 whose sleeps return at once (so sync retries and backoffs take no time). */
export const INSTANT_CLOCK: Clock = { now: () => 0, random: () => 0.5, sleep: async () => {} };

/** A text message `m<n>` from "@b:hs" with event ID `$<n>` and timestamp `n`. */
export const textMessage = (n: number) => ({
  event_id: `$${n}`,
  type: "m.room.message",
  sender: "@b:hs",
  origin_server_ts: n,
  content: { body: `m${n}` },
});

export const SCRIPTED_SESSION = {
  homeserverUrl: "https://hs",
  userId: "@me:hs",
  deviceId: "D",
  accessToken: "t",
} as const;

/**
 * A SQLite client store given `SCRIPTED_SESSION`, in a new temporary folder `dir` (removed after
 * test `t`; the crypto store may go there too).
 */
export async function tempSqliteClientStore(
  t: TestContext,
  prefix: string,
): Promise<{ dir: string; store: SqliteClientStore }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await SqliteClientStore.open(join(dir, "client.sqlite3"));
  await store.saveSession({ ...SCRIPTED_SESSION });
  return { dir, store };
}

/**
 * A restored client at `path` (a SQLite file, created with the session when new), or on `store`
 * (given the session when it has none).
 */
export async function scriptedSyncClient(
  path: string | ClientStore,
  bodies: string[],
): Promise<MatrixClient> {
  const store = typeof path === "string" ? await SqliteClientStore.open(path) : path;
  if ((await store.loadSession()) === undefined) await store.saveSession({ ...SCRIPTED_SESSION });
  const client = new MatrixClient({
    homeserverUrl: SCRIPTED_SESSION.homeserverUrl,
    store,
    fillTimelineGaps: false,
    fetch: async () => new Response(bodies.shift() ?? '{"next_batch":"end"}', { status: 200 }),
  });
  await client.restore();
  return client;
}

/**
 * A client restored from a client store (a new memory store unless given) given `SCRIPTED_SESSION`
 * and the sync position `since`, when given; the other options as given: for tests whose `fetch`
 * answers every request.
 */
export async function restoredMemoryClient(
  options: Omit<MatrixClientOptions, "homeserverUrl" | "store"> & { readonly store?: ClientStore },
  since?: string,
): Promise<MatrixClient> {
  const store = options.store ?? new MemoryClientStore();
  await store.saveSession({ ...SCRIPTED_SESSION });
  if (since !== undefined) await store.saveSync({ nextBatch: since, rooms: [], accountData: [] });
  const client = new MatrixClient({ homeserverUrl: SCRIPTED_SESSION.homeserverUrl, store, ...options });
  await client.restore();
  return client;
}
