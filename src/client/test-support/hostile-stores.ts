// The hostile-sync property of the store fuzz tests, for any back end: a client on a client store
// (and, with encryption, a crypto store) syncs hostile `/sync` responses (./hostile-sync.ts), then a
// new client on the same databases must read back what the first had. Each back end's test file
// says how to make a run's databases (`StoreBackend`); the checks are here, so that every back end
// is held to the same property:
// - `syncOnce` succeeds and saves the response's token, or fails with a typed error saving nothing;
// - every event the client emits survives `JSON.stringify` and `structuredClone`;
// - a room once encrypted (recorded by the crypto store, or m.room.encryption in its state) stays so;
// - a new client on the same databases has the same rooms, snapshots, members, encryption, account
//   data and token as the first had;
// - a well-formed response after all that is handled as usual.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import fc from "fast-check";
import { E2eeError } from "../../e2ee/errors.ts";
import { MatrixClient } from "../client.ts";
import { SqliteClientStore } from "../client-store/sqlite-store.ts";
import type { ClientStore } from "../client-store/store.ts";
import type { EncryptionOptions } from "../encryption/options.ts";
import { ClientError, MalformedResponseError } from "../errors.ts";
import type { ClientEventMap } from "../events/types.ts";
import type { FetchLike } from "../http.ts";
import { Room } from "../rooms/room.ts";
import { hostileSync } from "./hostile-sync.ts";

/** One run's databases, new and empty. */
export interface StorePlace {
  /** A client store on this run's client database (a new instance for each client). */
  clientStore(): ClientStore | Promise<ClientStore>;
  /** The `encryption` option of a client on this run's crypto store. */
  readonly encryption: EncryptionOptions;
  /** Deletes the databases. */
  dispose(): Promise<void>;
}

/** A back end under test: makes each run's databases. */
export type StoreBackend = () => Promise<StorePlace>;

// Memory-backed when the machine has it: each run opens and syncs new SQLite databases to the disk.
const TMP = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();

const SESSION = { homeserverUrl: "https://hs", userId: "@me:hs", deviceId: "D", accessToken: "t" };

/** Every event a sync may emit (`sync.settle` last: a feed from elsewhere, such as an appservice transaction, has none). */
export const SYNC_EVENTS: (keyof ClientEventMap)[] = [
  "room.event",
  "room.decrypted",
  "room.undecryptable",
  "room.state",
  "room.member",
  "room.invite",
  "room.myMembership",
  "room.tombstone",
  "room.summary",
  "room.unreadNotifications",
  "room.typing",
  "room.receipt",
  "room.accountData",
  "accountData",
  "presence",
  "toDevice",
  "sync.settle",
];

/** The homeserver: `/sync` answers from `bodies`; the key endpoints answer as an empty server. */
function server(bodies: string[]): FetchLike {
  return async (url) => {
    const path = new URL(url).pathname;
    if (path.endsWith("/sync")) {
      const body = bodies.shift();
      assert.ok(body !== undefined, "no more sync responses");
      return new Response(body, { status: 200, headers: { "Content-Type": "application/json" } });
    }
    if (path.endsWith("/keys/upload"))
      return Response.json({ one_time_key_counts: { signed_curve25519: 50 } });
    if (path.endsWith("/keys/query")) return Response.json({ device_keys: {}, failures: {} });
    if (path.endsWith("/keys/claim")) return Response.json({ one_time_keys: {}, failures: {} });
    if (path.includes("/sendToDevice/")) return Response.json({});
    return Response.json({ errcode: "M_NOT_FOUND", error: "not here" }, { status: 404 });
  };
}

interface Opened {
  client: MatrixClient;
  store: ClientStore;
  bodies: string[];
  /** Global account data types the client announced. */
  accountData: Set<string>;
  errors: unknown[];
  /** Events a listener could not `JSON.stringify` or `structuredClone` (the emitter only logs a throw). */
  unclonable: string[];
}

/** What the runs reached, so that the generators cannot drift into testing nothing. */
export interface Reached {
  syncs: number;
  refused: number;
  rooms: number;
  encrypted: number;
  events: number;
}

async function open(place: StorePlace, encrypted: boolean, reached: Reached): Promise<Opened> {
  const store = await place.clientStore();
  if ((await store.loadSession()) === undefined) await store.saveSession(SESSION);
  const bodies: string[] = [];
  const client = new MatrixClient({
    homeserverUrl: SESSION.homeserverUrl,
    store,
    fillTimelineGaps: false,
    fetch: server(bodies),
    ...(encrypted ? { encryption: place.encryption } : {}),
  });
  const accountData = new Set<string>();
  const errors: unknown[] = [];
  const unclonable: string[] = [];
  for (const name of SYNC_EVENTS) {
    client.on(name, (...args: unknown[]) => {
      // Rooms are the client's objects; what a listener gets from the server is the rest.
      const data = args.map((a) => (a instanceof Room ? a.roomId : a));
      // Neither may throw: an application logs events and posts them to workers. Recorded, not
      // thrown: the emitter catches what a listener throws.
      try {
        JSON.stringify(data);
        structuredClone(data);
      } catch (e) {
        unclonable.push(`${name}: ${String(e)}`);
      }
      reached.events++;
    });
  }
  client.on("accountData", (e) => {
    accountData.add(e.type);
  });
  client.on("error", (e) => {
    errors.push(e);
  });
  await client.restore();
  return { client, store, bodies, accountData, errors, unclonable };
}

/** `v` with -0 as 0: JSON writes both as 0, and they are the same JSON number. */
export function zeroed(v: unknown): unknown {
  if (Object.is(v, -0)) return 0;
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map(zeroed);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v))
    Object.defineProperty(out, k, { value: zeroed(x), enumerable: true });
  return out;
}

/** What must read back the same from the stores: each room's snapshot and encryption, account data. */
async function picture(client: MatrixClient, accountDataTypes: Iterable<string>): Promise<unknown> {
  const rooms = [];
  for (const room of client.getRooms().sort((a, b) => (a.roomId < b.roomId ? -1 : 1))) {
    rooms.push({
      snapshot: room.toSnapshot(),
      members: room.members,
      encryption: room.encryption ?? null,
      recorded: await client.isRoomEncrypted(room.roomId),
    });
  }
  const accountData = [...accountDataTypes].sort().map((t) => [t, client.getAccountData(t)]);
  return zeroed({ rooms, accountData, nextBatch: client.nextBatch });
}

/** The errors a hostile response may end a sync with: typed, and saying what was wrong. */
function isTyped(e: unknown): boolean {
  return e instanceof MalformedResponseError || e instanceof ClientError || e instanceof E2eeError;
}

const wellFormed = (nextBatch: string) =>
  JSON.stringify({
    next_batch: nextBatch,
    rooms: {
      join: {
        "!fine:hs": {
          timeline: {
            events: [
              {
                event_id: `$m-${nextBatch}`,
                type: "m.room.member",
                state_key: "@me:hs",
                sender: "@me:hs",
                origin_server_ts: 1,
                content: { membership: "join" },
              },
            ],
          },
        },
      },
    },
  });

/**
 * One run of the property: `responses` against a client on new databases, then a reopen. Returns
 * what the reopened client read back (before the well-formed response).
 */
export async function runHostile(
  backend: StoreBackend,
  responses: readonly string[],
  encrypted: boolean,
  reached: Reached,
): Promise<unknown> {
  const place = await backend();
  try {
    const first = await open(place, encrypted, reached);
    const everEncrypted = new Set<string>();
    let saved: string | undefined;
    let before: unknown;
    try {
      for (const body of responses) {
        first.bodies.push(body);
        try {
          await first.client.syncOnce({ timeoutMs: 0 });
          saved = JSON.parse(body).next_batch;
          assert.equal((await first.store.loadSync())?.nextBatch, saved, "the response's token is saved");
          reached.syncs++;
        } catch (e) {
          if (!isTyped(e)) throw e;
          reached.refused++;
          assert.equal((await first.store.loadSync())?.nextBatch, saved, "a failed sync saves nothing");
        }
        assert.deepEqual(
          first.unclonable,
          [],
          "every event emitted survives JSON.stringify and structuredClone",
        );
        for (const roomId of everEncrypted) {
          assert.ok(await first.client.isRoomEncrypted(roomId), `${JSON.stringify(roomId)} stays encrypted`);
        }
        for (const room of first.client.getRooms()) {
          // Encrypted for good: recorded by the crypto store, or with m.room.encryption in the
          // room's state (not only its invite's: the state after joining replaces that).
          const recorded = encrypted && (await first.client.crypto.isRoomRecordedEncrypted(room.roomId));
          if (recorded || room.getState("m.room.encryption") !== undefined) everEncrypted.add(room.roomId);
        }
      }
      for (const e of first.errors) assert.ok(isTyped(e), `a typed error was reported: ${String(e)}`);
      before = await picture(first.client, first.accountData);
      reached.rooms += first.client.getRooms().length;
      reached.encrypted += everEncrypted.size;
    } finally {
      await first.client.close();
    }
    const second = await open(place, encrypted, reached);
    let after: unknown;
    try {
      after = await picture(second.client, first.accountData);
      assert.deepEqual(after, before, "the stores read back what was written");
      for (const roomId of everEncrypted) assert.ok(await second.client.isRoomEncrypted(roomId));
      second.bodies.push(wellFormed("fine"));
      await second.client.syncOnce({ timeoutMs: 0 });
      assert.equal((await second.store.loadSync())?.nextBatch, "fine");
      assert.equal(second.client.getRoom("!fine:hs")?.membership, "join");
      for (const e of second.errors) assert.ok(isTyped(e), `a typed error was reported: ${String(e)}`);
      assert.deepEqual(
        second.unclonable,
        [],
        "every event emitted survives JSON.stringify and structuredClone",
      );
    } finally {
      await second.client.close();
    }
    return after;
  } finally {
    await place.dispose();
  }
}

/** The SQLite stores: a new directory for each run, with the client store's file and the crypto store's. */
export const sqliteBackend: StoreBackend = async () => {
  const dir = await mkdtemp(join(TMP, "keyroom-hostile-"));
  return {
    clientStore: () => SqliteClientStore.open(join(dir, "client.sqlite3")),
    encryption: { store: { directory: dir } },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
};

/** Three hostile responses in a row. */
export const hostileResponses = fc.tuple(hostileSync("s1"), hostileSync("s2"), hostileSync("s3"));

/**
 * The property over `numRuns` generated runs from `seed` (a failure prints its seed and path for
 * `fc.assert`'s options to replay it), then a check that the runs reached what they are for.
 */
export async function assertHostileProperty(
  t: TestContext,
  backend: StoreBackend,
  options: { encrypted: boolean; numRuns: number; seed: number },
): Promise<void> {
  const reached: Reached = { syncs: 0, refused: 0, rooms: 0, encrypted: 0, events: 0 };
  await fc.assert(
    fc.asyncProperty(hostileResponses, async (rs) => {
      await runHostile(backend, rs, options.encrypted, reached);
    }),
    { numRuns: options.numRuns, seed: options.seed },
  );
  assertReached(t, reached);
}

/**
 * The same responses against two back ends: each holds the property, and a reopened client reads
 * back the same from both (a user sees no difference between the back ends after a reload).
 */
export async function assertSameOnBoth(
  t: TestContext,
  backends: readonly [StoreBackend, StoreBackend],
  options: { encrypted: boolean; numRuns: number; seed: number },
): Promise<void> {
  const reached: Reached = { syncs: 0, refused: 0, rooms: 0, encrypted: 0, events: 0 };
  await fc.assert(
    fc.asyncProperty(hostileResponses, async (rs) => {
      const a = await runHostile(backends[0], rs, options.encrypted, reached);
      const b = await runHostile(backends[1], rs, options.encrypted, reached);
      assert.deepEqual(b, a, "both back ends read back the same");
    }),
    { numRuns: options.numRuns, seed: options.seed },
  );
  assertReached(t, reached);
}

function assertReached(t: TestContext, reached: Reached): void {
  t.diagnostic(`reached: ${JSON.stringify(reached)}`);
  // The generated responses reach what they are for: handled, refused, rooms, encryption, events.
  assert.ok(
    reached.syncs > reached.refused,
    `most responses are handled (${reached.syncs} handled, ${reached.refused} refused)`,
  );
  assert.ok(reached.refused > 0, "some are refused");
  assert.ok(reached.rooms > 0 && reached.encrypted > 0 && reached.events > 0, JSON.stringify(reached));
}
