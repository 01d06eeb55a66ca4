import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { MemoryClientStore } from "../client-store/index.ts";
import type { SyncChanges } from "../client-store/store.ts";
import type { Clock } from "../clock.ts";
import { MalformedResponseError, MatrixError } from "../errors.ts";
import type { RoomEvent } from "../events/types.ts";
import { MAX_JSON_RESPONSE_BYTES } from "../http.ts";
import type { SyncCryptoChanges, SyncProcessor } from "./hooks.ts";
import { MAX_UNSAVED_RESPONSES } from "./loop.ts";

type Reply = { status: number; body: unknown } | Error;

/** A fake `fetch` that answers `/sync` from a script and records the `since` tokens it was asked for. */
function scripted(replies: Reply[]) {
  const sinces: (string | null)[] = [];
  let stop: () => void = () => {};
  const exhausted = new Promise<void>((r) => {
    stop = r;
  });
  const fetch = async (url: string, init: RequestInit): Promise<Response> => {
    const u = new URL(url);
    if (u.pathname !== "/_matrix/client/v3/sync") throw new Error(`unexpected ${u.pathname}`);
    sinces.push(u.searchParams.get("since"));
    const r = replies.shift();
    if (!r) {
      stop();
      // Park like a long-poll until the loop is stopped.
      return new Promise((_res, rej) =>
        init.signal?.addEventListener("abort", () => rej(new Error("aborted"))),
      );
    }
    if (r instanceof Error) throw r;
    return new Response(JSON.stringify(r.body), {
      status: r.status,
      headers: { "content-type": "application/json" },
    });
  };
  return { fetch, sinces, exhausted };
}

function fakeClock(): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  return { sleeps, now: () => 0, random: () => 0.5, sleep: async (ms) => void sleeps.push(ms) };
}

const msg = (id: string, body: string) => ({
  event_id: id,
  type: "m.room.message",
  sender: "@bob:hs",
  origin_server_ts: 1,
  content: { msgtype: "m.text", body },
});
const member = (user: string, membership: string) => ({
  event_id: `$m-${user}-${membership}`,
  type: "m.room.member",
  state_key: user,
  sender: user,
  origin_server_ts: 1,
  content: { membership },
});
const joinSync = (next: string, events: unknown[], state: unknown[] = []) => ({
  status: 200,
  body: {
    next_batch: next,
    rooms: { join: { "!r:hs": { state: { events: state }, timeline: { events, prev_batch: `p${next}` } } } },
  },
});

async function loggedIn(
  fetch: (u: string, i: RequestInit) => Promise<Response>,
  store = new MemoryClientStore(),
  clock = fakeClock(),
) {
  await store.saveSession({
    homeserverUrl: "https://hs",
    userId: "@me:hs",
    deviceId: "DEV",
    accessToken: "tok",
  });
  const client = new MatrixClient({ homeserverUrl: "https://hs", store, fetch, clock });
  await client.restore();
  return { client, store, clock };
}

/** Answers each /sync with the next of `replies`; `asked` records each request's `since/timeout`. */
function answering(replies: { body: unknown }[]): {
  fetch: (url: string) => Promise<Response>;
  asked: string[];
} {
  const asked: string[] = [];
  const fetch = async (url: string): Promise<Response> => {
    const u = new URL(url);
    asked.push(`${u.searchParams.get("since") ?? "-"}/${u.searchParams.get("timeout")}`);
    const r = replies.shift() as { body: unknown };
    return new Response(JSON.stringify(r.body), { headers: { "content-type": "application/json" } });
  };
  return { fetch, asked };
}

/** Records the position of every sync save (after it), while saving on as before. */
function recordSaves(store: { saveSync(changes: SyncChanges): Promise<void> }): (string | undefined)[] {
  const saved: (string | undefined)[] = [];
  const saveSync = store.saveSync.bind(store);
  store.saveSync = async (changes) => {
    saved.push(changes.nextBatch);
    await saveSync(changes);
  };
  return saved;
}

/**
 * A processor of a store shared with another process: each unit of work finds the store as the
 * next of `units` says (`moved`: the other process's position), its mark counts the units.
 */
function sharedUnits(
  units: { moved?: string }[],
  onChanges: (changes: SyncCryptoChanges) => void = () => {},
): { processor: SyncProcessor; marks: (number | undefined)[] } {
  const marks: (number | undefined)[] = [];
  let reloads = 7;
  const processor: SyncProcessor = {
    processSyncChanges: async (changes) => {
      onChanges(changes);
      return changes.toDeviceEvents;
    },
    syncMark: () => reloads,
    async handleSyncUnit(_since, mark, handle) {
      marks.push(mark);
      const unit = units.shift() ?? {};
      reloads++;
      await handle(unit.moved === undefined ? undefined : { position: unit.moved });
      return { mark: reloads, ...unit };
    },
  };
  return { processor, marks };
}

describe("sync loop", () => {
  it("emits room events and state, saves the token after listeners finished, and resumes from it", async () => {
    const s = scripted([
      joinSync("s1", [msg("$1", "one")], [member("@me:hs", "join")]),
      joinSync("s2", [msg("$2", "two")]),
    ]);
    const { client, store } = await loggedIn(s.fetch);
    const seen: string[] = [];
    const myMembership: string[] = [];
    client.on("room.myMembership", (_room, m) => void myMembership.push(m));
    client.on("room.event", async (_room, ev: RoomEvent) => {
      // The token for the response carrying this event must not be saved yet.
      const saved = (await store.loadSync())?.nextBatch;
      seen.push(`${ev.eventId}@${saved ?? "none"}`);
    });
    await client.startSync();
    await s.exhausted;
    await client.stopSync();
    assert.deepEqual(seen, ["$1@none", "$2@s1"]);
    assert.deepEqual(myMembership, ["join"]);
    assert.deepEqual(s.sinces, [null, "s1", "s2"]);
    assert.equal((await store.loadSync())?.nextBatch, "s2");
    assert.equal(client.getRoom("!r:hs")?.membership, "join");
    assert.equal(client.syncState, "stopped");

    // A new client on the same store resumes from s2 with the room state cached.
    const again = scripted([]);
    const { client: c2 } = await loggedIn(again.fetch, store);
    assert.equal(c2.getRoom("!r:hs")?.getMember("@me:hs")?.membership, "join");
    void c2.startSync();
    await again.exhausted;
    await c2.stopSync();
    assert.deepEqual(again.sinces, ["s2"]);
  });

  it("reads a first sync larger than other responses may be (a big account's)", async () => {
    // Whitespace padding past the general bound, streamed in one reused 1 MiB chunk.
    const pad = new TextEncoder().encode(" ".repeat(1 << 20));
    const head = new TextEncoder().encode(
      JSON.stringify(joinSync("s1", [msg("$1", "one")]).body).slice(0, -1),
    );
    const fetch = async (): Promise<Response> => {
      let left = MAX_JSON_RESPONSE_BYTES / pad.byteLength + 1;
      const body = new ReadableStream<Uint8Array>({
        start: (c) => c.enqueue(head),
        pull: (c) => {
          if (left-- > 0) return c.enqueue(pad);
          c.enqueue(new TextEncoder().encode("}"));
          c.close();
        },
      });
      return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
    };
    const { client } = await loggedIn(fetch);
    const seen: string[] = [];
    client.on("room.event", (_room, ev) => void seen.push(ev.eventId));
    await client.syncOnce();
    assert.deepEqual(seen, ["$1"]);
    assert.equal(client.nextBatch, "s1");
  });

  it("backs off on network errors, 5xx and malformed bodies, honours retry_after_ms, and keeps going", async () => {
    const s = scripted([
      new TypeError("fetch failed"),
      { status: 502, body: { errcode: "M_UNKNOWN" } },
      { status: 429, body: { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 4321 } },
      { status: 200, body: { rooms: {} } },
      joinSync("s1", [msg("$1", "one")]),
    ]);
    const { client, clock } = await loggedIn(s.fetch);
    const errors: unknown[] = [];
    const states: string[] = [];
    client.on("error", (e) => void errors.push(e));
    client.on("sync", (state) => void states.push(state));
    await client.startSync();
    await s.exhausted;
    await client.stopSync();
    assert.equal(errors.length, 4);
    assert.ok(errors[2] instanceof MatrixError && errors[2].retryAfterMs === 4321);
    assert.ok(errors[3] instanceof MalformedResponseError);
    // Jittered exponential for the first two (random() = 0.5), the server's wait for the 429.
    assert.equal(clock.sleeps.length, 4);
    assert.equal(clock.sleeps[0], 750);
    assert.equal(clock.sleeps[1], 1500);
    assert.equal(clock.sleeps[2], 4321);
    assert.equal(clock.sleeps[3], 6000);
    assert.deepEqual(states, ["initial", "backoff", "backoff", "backoff", "backoff", "syncing", "stopped"]);
  });

  it("drops a malformed event without losing the others", async () => {
    const s = scripted([
      joinSync("s1", [msg("$1", "one"), { event_id: 5, type: "m.room.message" }, msg("$3", "three")]),
    ]);
    const { client } = await loggedIn(s.fetch);
    const ids: string[] = [];
    client.on("room.event", (_r, ev) => void ids.push(ev.eventId));
    await client.startSync();
    await client.stopSync();
    assert.deepEqual(ids, ["$1", "$3"]);
  });

  it("stops on a revoked token and forgets the session", async () => {
    const s = scripted([{ status: 401, body: { errcode: "M_UNKNOWN_TOKEN", error: "gone" } }]);
    const { client, store } = await loggedIn(s.fetch);
    const loggedOut: boolean[] = [];
    client.on("session.loggedOut", (i) => void loggedOut.push(i.softLogout));
    await assert.rejects(
      client.startSync(),
      (e: unknown) => e instanceof MatrixError && e.errcode === "M_UNKNOWN_TOKEN",
    );
    assert.deepEqual(loggedOut, [false]);
    assert.equal(client.isLoggedIn, false);
    assert.equal(await store.loadSession(), undefined);
  });

  it("runs the E2EE hook first, decrypts through it, and does not save the token when it throws", async () => {
    const encrypted = {
      event_id: "$enc",
      type: "m.room.encrypted",
      sender: "@bob:hs",
      origin_server_ts: 1,
      content: { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "xx" },
    };
    const body = {
      next_batch: "s1",
      to_device: { events: [{ type: "m.room.encrypted", sender: "@bob:hs", content: { c: 1 } }] },
      device_lists: { changed: ["@bob:hs"] },
      device_one_time_keys_count: { signed_curve25519: 3 },
      rooms: { join: { "!r:hs": { timeline: { events: [encrypted] } } } },
    };
    const s = scripted([
      { status: 200, body },
      { status: 200, body },
    ]);
    const { client, store } = await loggedIn(s.fetch);
    const order: string[] = [];
    let failOnce = true;
    const processor: SyncProcessor = {
      async processSyncChanges(changes) {
        order.push(
          `process:${changes.deviceLists.changed.join()}:${changes.oneTimeKeyCounts?.signed_curve25519}`,
        );
        assert.equal(changes.unusedFallbackKeyTypes, undefined);
        if (failOnce) {
          failOnce = false;
          throw new Error("crypto store busy");
        }
        return [{ type: "m.room_key", sender: "@bob:hs", content: {} }];
      },
      async decryptRoomEvent(_room, ev) {
        order.push(`decrypt:${ev.event_id}`);
        return {
          ok: true,
          type: "m.room.message",
          content: { msgtype: "m.text", body: "hi" },
          info: { decrypted: true, trust: "unverified" },
        };
      },
      async beforeSaveSyncToken(next) {
        order.push(`beforeSave:${next}:${(await store.loadSync())?.nextBatch ?? "none"}`);
      },
    };
    client.setSyncProcessor(processor);
    client.on("toDevice", (ev) => void order.push(`toDevice:${ev.type}`));
    // Checked after the sync: the emitter catches what a listener throws.
    const seen: { raw: string; body: unknown }[] = [];
    client.on("room.event", (_r, ev) => {
      order.push(`event:${ev.type}:${ev.encryption?.decrypted}`);
      seen.push({ raw: ev.raw.type, body: ev.content.body });
    });
    await client.startSync();
    await s.exhausted;
    await client.stopSync();
    assert.deepEqual(order, [
      "process:@bob:hs:3",
      "process:@bob:hs:3",
      "decrypt:$enc",
      "toDevice:m.room_key",
      "event:m.room.message:true",
      "beforeSave:s1:none",
    ]);
    assert.deepEqual(
      seen,
      [{ raw: "m.room.encrypted", body: "hi" }],
      "the raw event stays the encrypted one",
    );
    assert.deepEqual(s.sinces, [null, null, "s1"]);
  });

  it("decrypts a room's encrypted timeline events in one decryptRoomEvents call, in order; a throwing hook marks them", async () => {
    const enc = (id: string) => ({
      event_id: id,
      type: "m.room.encrypted",
      sender: "@bob:hs",
      origin_server_ts: 1,
      content: { algorithm: "m.megolm.v1.aes-sha2" },
    });
    const s = scripted([
      joinSync("s1", [enc("$a"), msg("$plain", "clear"), enc("$b"), enc("$c")]),
      joinSync("s2", [enc("$d")]),
    ]);
    const { client } = await loggedIn(s.fetch);
    const calls: string[][] = [];
    const processor: SyncProcessor = {
      async processSyncChanges() {
        return [];
      },
      async decryptRoomEvent() {
        throw new Error("the batch hook is used instead");
      },
      async decryptRoomEvents(_room, events) {
        calls.push(events.map((e) => e.event_id));
        if (calls.length === 2) throw new Error("engine bug");
        return events.map((e) =>
          e.event_id === "$b"
            ? { ok: false, code: "UNKNOWN_SESSION", reason: "not yet" }
            : {
                ok: true,
                type: "m.room.message",
                content: { msgtype: "m.text", body: `clear ${e.event_id}` },
                info: { decrypted: true, trust: "unverified" },
              },
        );
      },
    };
    client.setSyncProcessor(processor);
    const seen: string[] = [];
    client.on("room.event", (_r, ev) => {
      seen.push(
        ev.encryption === undefined
          ? `${ev.eventId}:plain`
          : ev.encryption.decrypted
            ? `${ev.eventId}:${ev.content.body}`
            : `${ev.eventId}:${ev.encryption.code}`,
      );
    });
    await client.startSync();
    await s.exhausted;
    await client.stopSync();
    assert.deepEqual(calls, [["$a", "$b", "$c"], ["$d"]]);
    assert.deepEqual(seen, [
      "$a:clear $a",
      "$plain:plain",
      "$b:UNKNOWN_SESSION",
      "$c:clear $c",
      "$d:DECRYPTOR_FAILED",
    ]);
  });

  it("passes an absent one-time-key count from /sync on as zero (the spec), from feedSync as unchanged", async () => {
    const s = scripted([
      { status: 200, body: { next_batch: "s1" } },
      { status: 200, body: { next_batch: "s2", device_one_time_keys_count: { signed_curve25519: 7 } } },
    ]);
    const { client } = await loggedIn(s.fetch);
    const seen: (Record<string, number> | undefined)[] = [];
    const processor: SyncProcessor = {
      async processSyncChanges(changes) {
        seen.push(changes.oneTimeKeyCounts);
        return [];
      },
      async decryptRoomEvent() {
        throw new Error("no encrypted events in this test");
      },
      async beforeSaveSyncToken() {},
    };
    client.setSyncProcessor(processor);
    await client.startSync();
    await s.exhausted;
    await client.stopSync();
    // The server may leave the field out when every count is zero (spec v1.17).
    assert.deepEqual(seen.slice(0, 2), [{}, { signed_curve25519: 7 }]);
    // An appservice's transaction leaves it out when the counts did not change (MSC3202).
    seen.length = 0;
    await client.feedSync({ next_batch: "s9" });
    assert.deepEqual(seen, [undefined]);
  });

  it("marks encrypted events as undecrypted when no E2EE layer is set", async () => {
    const s = scripted([
      joinSync("s1", [
        { event_id: "$e", type: "m.room.encrypted", sender: "@b:hs", origin_server_ts: 1, content: {} },
      ]),
    ]);
    const { client } = await loggedIn(s.fetch);
    const evs: RoomEvent[] = [];
    client.on("room.event", (_r, ev) => void evs.push(ev));
    await client.startSync();
    await client.stopSync();
    assert.equal(evs[0]?.encryption?.decrypted, false);
  });

  it("keeps syncing (and saving tokens) when a listener throws", async () => {
    const s = scripted([joinSync("s1", [msg("$1", "one")]), joinSync("s2", [msg("$2", "two")])]);
    const { client, store } = await loggedIn(s.fetch);
    let threw = 0;
    client.on("room.event", () => {
      threw++;
      throw new Error("listener bug");
    });
    await client.startSync();
    await s.exhausted;
    await client.stopSync();
    assert.equal(threw, 2, "the listener threw for both responses' events");
    assert.equal((await store.loadSync())?.nextBatch, "s2");
  });

  it("shared store: after a response another process overtook, catches up from its end, then rejoins the shared position", async () => {
    const replies = [
      joinSync("s1", [msg("$1", "one")]),
      joinSync("s2", [msg("$2", "two")]),
      joinSync("s4", [msg("$2", "two"), msg("$3", "three")]),
    ];
    const { fetch, asked } = answering(replies);
    const { client, store } = await loggedIn(fetch);
    // What the store says in turn: another process synced to s3 (past this response's end, s1),
    // and still s3 at the catch-up; then this process is at the shared position.
    const { processor, marks } = sharedUnits([{ moved: "s3" }, { moved: "s3" }, {}]);
    client.setSyncProcessor(processor);
    // The position each unit's response saves (after the unit: saving waits for sync.settle work).
    const saved = recordSaves(store);
    const ids: string[] = [];
    client.on("room.event", (_r, ev) => void ids.push(ev.eventId));

    await client.syncOnce({ timeoutMs: 5000 });
    assert.deepEqual(asked, ["-/0", "s1/0"], "the catch-up from s1 goes out at once, without waiting");
    assert.equal(client.nextBatch, "s3");
    await client.syncOnce({ timeoutMs: 5000 });
    assert.deepEqual(asked, ["-/0", "s1/0", "s3/5000"]);
    assert.deepEqual(ids, ["$1", "$2", "$3"], "each event once: $2 came again from s3");
    // The first unit's mark is syncMark(); the catch-up's is unknown; the rejoin carries the mark
    // taken where s3 was read.
    assert.deepEqual(marks, [7, undefined, 8]);
    assert.deepEqual(saved, ["s3", "s3", "s4"]);
    assert.equal(client.nextBatch, "s4");
  });

  it("shared store: after an overtaken response that carried to-device messages, syncs on from the shared position first, then catches up from its end", async () => {
    // The shared position s3 may be before this response's end s1 (then the to-device messages
    // after s3 were handled by no process) or past it: asking from s1 first would tell the server
    // they were received. So s3 first, in full (they come again there), then s1, rooms only.
    const toDevice = (n: number) => [{ type: "org.example.ping", sender: "@bob:hs", content: { n } }];
    const withToDevice = (reply: ReturnType<typeof joinSync>, n: number) => ({
      ...reply,
      body: { ...reply.body, to_device: { events: toDevice(n) } },
    });
    const replies = [
      withToDevice(joinSync("s1", [msg("$1", "one")]), 1),
      withToDevice(joinSync("s4", [msg("$3", "three")]), 1),
      joinSync("s5", [msg("$2", "two"), msg("$3", "three"), msg("$4", "four")]),
      joinSync("s6", [msg("$4", "four"), msg("$5", "five")]),
    ];
    const { fetch, asked } = answering(replies);
    const { client, store } = await loggedIn(fetch);
    // Another process handled up to s3; this one then handles from s3; the catch-up finds the
    // store at s4 (this process's own position); the next response is handled in full.
    const handled: unknown[] = [];
    const { processor, marks } = sharedUnits([{ moved: "s3" }, {}, { moved: "s4" }, {}], (changes) =>
      handled.push(...changes.toDeviceEvents.map((e) => e.content.n)),
    );
    client.setSyncProcessor(processor);
    const saved = recordSaves(store);
    const ids: string[] = [];
    client.on("room.event", (_r, ev) => void ids.push(ev.eventId));

    await client.syncOnce({ timeoutMs: 5000 });
    assert.deepEqual(asked, ["-/0", "s3/0", "s1/0"], "the shared position first, then the catch-up");
    assert.deepEqual(handled, [1], "the to-device message, handled from the shared position");
    assert.equal(client.nextBatch, "s4", "the catch-up does not move this process's position");
    assert.deepEqual(ids, ["$1", "$3", "$2", "$4"], "the events in between shown once");
    await client.syncOnce({ timeoutMs: 5000 });
    assert.deepEqual(asked, ["-/0", "s3/0", "s1/0", "s4/5000"]);
    assert.deepEqual(ids, ["$1", "$3", "$2", "$4", "$5"], "$4, shown by the catch-up, not again");
    // The moved unit's mark is syncMark(); the unit from s3 carries the mark taken where s3 was
    // read; the catch-up's is unknown; the next one carries the mark of the unit that reached s4.
    assert.deepEqual(marks, [7, 8, undefined, 9]);
    assert.deepEqual(saved, ["s3", "s4", "s4", "s6"]);
    assert.equal(client.nextBatch, "s6");
  });

  it("fetches on while sync.settle work runs, saving each token only after its own work, in order", async () => {
    const s = scripted([
      joinSync("s1", [msg("$1", "one")]),
      joinSync("s2", [msg("$2", "two")]),
      joinSync("s3", [msg("$3", "three")]),
    ]);
    const { client, store } = await loggedIn(s.fetch);
    // The work started for s2's event (a bot answering a command) is held until released.
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const saved = recordSaves(store);
    client.on("sync.settle", ({ nextBatch }) => (nextBatch === "s2" ? held : undefined));
    await client.startSync();
    await s.exhausted;
    // s3 was fetched and handled (and the next request is out) while s2's work still runs.
    assert.deepEqual(s.sinces, [null, "s1", "s2", "s3"]);
    assert.deepEqual(saved, ["s1"], "s2's token waits for its work, s3's for s2's save");
    const stopped = client.stopSync();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(saved, ["s1"], "stopping waits for the work too");
    release();
    await stopped;
    assert.deepEqual(saved, ["s1", "s2", "s3"]);
    assert.equal((await store.loadSync())?.nextBatch, "s3");
  });

  it("starts every sync.settle listener at once: one that waits does not hold back the others", async () => {
    // An app's listener registered first waits for something the bot's (registered after) does:
    // run one after another, the response's work would never finish.
    const s = scripted([joinSync("s1", [msg("$1", "one")])]);
    const { client, store } = await loggedIn(s.fetch);
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const order: string[] = [];
    client.on("sync.settle", async () => {
      order.push("first starts");
      await gate;
      order.push("first ends");
    });
    client.on("sync.settle", () => {
      order.push("second");
      release();
    });
    await client.syncOnce();
    assert.deepEqual(order, ["first starts", "second", "first ends"]);
    assert.equal((await store.loadSync())?.nextBatch, "s1");
  });

  it("at most MAX_UNSAVED_RESPONSES wait for their work before the loop stops fetching", async () => {
    const count = MAX_UNSAVED_RESPONSES + 3;
    const s = scripted(
      Array.from({ length: count }, (_, i) => joinSync(`s${i + 1}`, [msg(`$${i + 1}`, "x")])),
    );
    const { client } = await loggedIn(s.fetch);
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    // Every response after the first holds its work.
    client.on("sync.settle", ({ nextBatch }) => (nextBatch === "s1" ? undefined : held));
    await client.startSync();
    while (s.sinces.length < MAX_UNSAVED_RESPONSES + 1) await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.equal(s.sinces.length, MAX_UNSAVED_RESPONSES + 1, "no request while the saves wait");
    release();
    await s.exhausted;
    await client.stopSync();
    assert.equal(s.sinces.length, count + 1);
  });

  it("a failed save is reported, backed off from, and written with the next one", async () => {
    const s = scripted([
      joinSync("s1", [msg("$1", "one")]),
      joinSync("s2", [msg("$2", "two")], [member("@bob:hs", "join")]),
      joinSync("s3", [msg("$3", "three")]),
    ]);
    const { client, store, clock } = await loggedIn(s.fetch);
    const saveSync = store.saveSync.bind(store);
    let failNext = false;
    store.saveSync = async (changes) => {
      if (changes.nextBatch === "s2" && !failNext) {
        failNext = true;
        throw new Error("disk full");
      }
      await saveSync(changes);
    };
    const errors: unknown[] = [];
    client.on("error", (e) => void errors.push(e));
    await client.startSync();
    await s.exhausted;
    await client.stopSync();
    assert.ok(errors.some((e) => e instanceof Error && e.message === "disk full"));
    assert.ok(clock.sleeps.length >= 1, "the loop backed off");
    const stored = await store.loadSync();
    assert.equal(stored?.nextBatch, "s3");
    // s2's room state (Bob's join) was not lost with its save: it went with s3's.
    const room = stored?.rooms.find((r) => r.roomId === "!r:hs");
    assert.ok(JSON.stringify(room).includes("@bob:hs"));
  });
});
