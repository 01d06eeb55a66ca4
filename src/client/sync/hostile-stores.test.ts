// A hostile homeserver (and hostile room members) against a client on the real stores: the SQLite
// client store and, with encryption, the SQLite crypto store. Whatever `/sync` says (ill-formed
// Unicode anywhere, `__proto__` keys, IDs past the length bounds, one room in several sections,
// odd numbers, arrays for objects, odd encryption settings and to-device events):
// - `syncOnce` succeeds and saves the response's token, or fails with a typed error saving nothing;
// - every event the client emits survives `JSON.stringify` and `structuredClone`;
// - a room once encrypted (recorded by the crypto store, or m.room.encryption in its state) stays so;
// - a new client on the same files has the same rooms, state and encryption as the first had;
// - a well-formed response after all that is handled as usual.
// The generators are in ../test-support/hostile-sync.ts; the seeds are fixed, and a failure prints
// its seed and path for `fc.assert`'s options to replay it. Found so far: rooms keyed "" (the store
// unreadable after), lone surrogates in room IDs and tokens, 1e400 in events, rotation periods the
// crypto store refuses (sync wedged), an m.room.encryption naming no algorithm (encryption off).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { E2eeError } from "../../e2ee/errors.ts";
import { MatrixClient } from "../client.ts";
import { SqliteClientStore } from "../client-store/sqlite-store.ts";
import { ClientError, MalformedResponseError } from "../errors.ts";
import type { ClientEventMap } from "../events/types.ts";
import type { FetchLike } from "../http.ts";
import { Room } from "../rooms/room.ts";
import { hostileSync } from "../test-support/hostile-sync.ts";

// Memory-backed when the machine has it: each run opens and syncs new SQLite databases to the disk.
const TMP = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();

const SESSION = { homeserverUrl: "https://hs", userId: "@me:hs", deviceId: "D", accessToken: "t" };

/** Every event a sync may emit. */
const EVENTS: (keyof ClientEventMap)[] = [
  "room.event",
  "room.decrypted",
  "room.undecryptable",
  "room.state",
  "room.member",
  "room.invite",
  "room.myMembership",
  "room.tombstone",
  "room.typing",
  "room.receipt",
  "room.accountData",
  "accountData",
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
  store: SqliteClientStore;
  bodies: string[];
  /** Global account data types the client announced. */
  accountData: Set<string>;
  errors: unknown[];
}

/** What the runs reached, so that the generators cannot drift into testing nothing. */
const reached = { syncs: 0, refused: 0, rooms: 0, encrypted: 0, events: 0 };

async function open(dir: string, encrypted: boolean): Promise<Opened> {
  const store = await SqliteClientStore.open(join(dir, "client.sqlite3"));
  if ((await store.loadSession()) === undefined) await store.saveSession(SESSION);
  const bodies: string[] = [];
  const client = new MatrixClient({
    homeserverUrl: SESSION.homeserverUrl,
    store,
    fillTimelineGaps: false,
    fetch: server(bodies),
    ...(encrypted ? { encryption: { store: { directory: dir } } } : {}),
  });
  const accountData = new Set<string>();
  const errors: unknown[] = [];
  for (const name of EVENTS) {
    client.on(name, (...args: unknown[]) => {
      // Rooms are the client's objects; what a listener gets from the server is the rest.
      const data = args.map((a) => (a instanceof Room ? a.roomId : a));
      // Neither may throw: an application logs events and posts them to workers.
      JSON.stringify(data);
      structuredClone(data);
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
  return { client, store, bodies, accountData, errors };
}

/** `v` with -0 as 0: JSON writes both as 0, and they are the same JSON number. */
function zeroed(v: unknown): unknown {
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

async function run(responses: string[], encrypted: boolean): Promise<void> {
  const dir = await mkdtemp(join(TMP, "keyroom-hostile-"));
  try {
    const first = await open(dir, encrypted);
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
    const second = await open(dir, encrypted);
    try {
      assert.deepEqual(
        await picture(second.client, first.accountData),
        before,
        "the stores read back what was written",
      );
      for (const roomId of everEncrypted) assert.ok(await second.client.isRoomEncrypted(roomId));
      second.bodies.push(wellFormed("fine"));
      await second.client.syncOnce({ timeoutMs: 0 });
      assert.equal((await second.store.loadSync())?.nextBatch, "fine");
      assert.equal(second.client.getRoom("!fine:hs")?.membership, "join");
      for (const e of second.errors) assert.ok(isTyped(e), `a typed error was reported: ${String(e)}`);
    } finally {
      await second.client.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const responses = fc.tuple(hostileSync("s1"), hostileSync("s2"), hostileSync("s3"));

describe("hostile sync responses against the SQLite stores", () => {
  it("client store: typed errors only, nothing lost or changed across a reopen", async (t) => {
    const at = { ...reached };
    await fc.assert(
      fc.asyncProperty(responses, (rs) => run(rs, false)),
      { numRuns: 120, seed: 0x5eed },
    );
    t.diagnostic(`reached: ${JSON.stringify(delta(at))}`);
    assertReached(delta(at));
  });

  it("with encryption (SQLite crypto store): the same, and no room loses its encryption", async (t) => {
    const at = { ...reached };
    await fc.assert(
      fc.asyncProperty(responses, (rs) => run(rs, true)),
      { numRuns: 60, seed: 0x5eed + 1 },
    );
    t.diagnostic(`reached: ${JSON.stringify(delta(at))}`);
    assertReached(delta(at));
  });
});

function delta(at: typeof reached): typeof reached {
  return {
    syncs: reached.syncs - at.syncs,
    refused: reached.refused - at.refused,
    rooms: reached.rooms - at.rooms,
    encrypted: reached.encrypted - at.encrypted,
    events: reached.events - at.events,
  };
}

/** The generated responses reach what they are for: handled, refused, rooms, encryption, events. */
function assertReached(d: typeof reached): void {
  assert.ok(d.syncs > d.refused, `most responses are handled (${d.syncs} handled, ${d.refused} refused)`);
  assert.ok(d.refused > 0, "some are refused");
  assert.ok(d.rooms > 0 && d.encrypted > 0 && d.events > 0, JSON.stringify(d));
}
