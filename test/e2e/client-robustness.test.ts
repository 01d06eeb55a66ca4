// The client's failure handling against the devserver: lost responses, rate limits, malformed
// bodies, room upgrades and .well-known discovery.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  ClientError,
  type Clock,
  type FetchLike,
  MalformedResponseError,
  MatrixClient,
  type RoomEvent,
  systemClock,
} from "../../src/index.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

let hs: TestDevServer;
let n = 0;
const uniq = (p: string) => `${p}${++n}${Date.now().toString(36)}`;
/** Real time, but backoff waits are skipped: these tests count retries, not seconds. */
const instant: Clock = { ...systemClock, sleep: async () => {} };

before(async () => {
  hs = await startTestDevServer();
});
after(() => hs.close());

async function newUser(
  opts: { fetch?: FetchLike; clock?: Clock; server?: TestDevServer } = {},
): Promise<MatrixClient> {
  const c = new MatrixClient({
    homeserverUrl: (opts.server ?? hs).baseUrl,
    syncTimeoutMs: 500,
    clock: opts.clock ?? instant,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  await c.register({ username: uniq("u"), password: "pw" });
  return c;
}

async function bodiesInRoom(c: MatrixClient, roomId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const ev of c.history(roomId))
    if (ev.type === "m.room.message") out.push(String(ev.content.body));
  return out.reverse();
}

describe("client robustness against the devserver", () => {
  it("retries a send whose response was lost with the same transaction ID: the server keeps one event", async () => {
    let dropped = 0;
    const txnIds: string[] = [];
    const lossy: FetchLike = async (url, init) => {
      const res = await fetch(url, init);
      const m = /\/send\/m\.room\.message\/([^/?]+)/.exec(url);
      if (m?.[1] && init.method === "PUT") {
        txnIds.push(m[1]);
        if (dropped === 0) {
          dropped++;
          // The server processed the request; the client never hears back.
          throw new TypeError("socket hang up");
        }
      }
      return res;
    };
    const a = await newUser({ fetch: lossy });
    const roomId = await a.createRoom({ encrypted: false });
    const eventId = await a.sendText(roomId, "exactly once");
    assert.equal(dropped, 1);
    assert.equal(txnIds.length, 2);
    assert.equal(txnIds[0], txnIds[1]);
    assert.deepEqual(await bodiesInRoom(a, roomId), ["exactly once"]);
    const page = await a.messages(roomId, { limit: 5 });
    assert.equal(page.events.find((e) => e.type === "m.room.message")?.eventId, eventId);
  });

  it("keeps per-room order when sends are queued together", async () => {
    const a = await newUser();
    const roomId = await a.createRoom({ encrypted: false });
    await Promise.all(Array.from({ length: 8 }, (_, i) => a.sendText(roomId, `q${i}`)));
    assert.deepEqual(
      await bodiesInRoom(a, roomId),
      Array.from({ length: 8 }, (_, i) => `q${i}`),
    );
  });

  it("waits out M_LIMIT_EXCEEDED for the server's retry_after_ms and succeeds", async () => {
    // The 429 is injected (a real rate limiter answers 429 only if the client is fast enough to
    // outrun it, which a loaded machine may not be); the wait itself is on the real clock.
    const RETRY_AFTER_MS = 40;
    const limitedAt: number[] = [];
    const retriedAt: number[] = [];
    const limiting: FetchLike = async (url, init) => {
      if (init?.method === "PUT" && url.includes("/send/")) {
        if (limitedAt.length < 2) {
          limitedAt.push(Date.now());
          return Response.json(
            { errcode: "M_LIMIT_EXCEEDED", error: "too many", retry_after_ms: RETRY_AFTER_MS },
            { status: 429 },
          );
        }
        retriedAt.push(Date.now());
      }
      return fetch(url, init);
    };
    const a = await newUser({ fetch: limiting, clock: systemClock });
    const roomId = await a.createRoom({ encrypted: false });
    const ids = await Promise.all(Array.from({ length: 3 }, (_, i) => a.sendText(roomId, `r${i}`)));
    assert.equal(new Set(ids).size, 3);
    assert.equal(limitedAt.length, 2, "two sends were refused");
    // Each retry waited at least what the server asked for (a slow machine only waits longer).
    const firstRetry = retriedAt[0] ?? 0;
    assert.ok(firstRetry - (limitedAt[1] ?? 0) >= RETRY_AFTER_MS - 1, "the retry came after retry_after_ms");
    assert.deepEqual(await bodiesInRoom(a, roomId), ["r0", "r1", "r2"]);
  });

  it("survives a malformed sync response: reports it, backs off, and loses nothing", async () => {
    let corrupted = 0;
    const corrupting: FetchLike = async (url, init) => {
      const res = await fetch(url, init);
      if (url.includes("/sync") && corrupted === 0 && new URL(url).searchParams.has("since")) {
        corrupted++;
        await res.body?.cancel();
        return new Response(JSON.stringify({ next_batch: 42, rooms: "nope" }), { status: 200 });
      }
      return res;
    };
    const a = await newUser({ fetch: corrupting });
    const b = await newUser();
    const roomId = await b.createRoom({ encrypted: false, invite: [a.userId] });
    await a.joinRoom(roomId);
    const errors: unknown[] = [];
    const bodies: string[] = [];
    a.on("error", (e) => void errors.push(e));
    await a.startSync();
    let resolveSeen: () => void = () => {};
    const seen = new Promise<void>((r) => {
      resolveSeen = r;
    });
    a.on("room.event", (_r, ev: RoomEvent) => {
      if (ev.type === "m.room.message") bodies.push(String(ev.content.body));
      if (bodies.length === 2) resolveSeen();
    });
    await b.sendText(roomId, "one");
    await b.sendText(roomId, "two");
    await seen;
    await a.stopSync();
    assert.equal(corrupted, 1);
    assert.ok(errors.some((e) => e instanceof MalformedResponseError));
    assert.deepEqual(bodies, ["one", "two"]);
  });

  it("follows m.room.tombstone to the upgraded room and exposes the predecessor", async () => {
    const a = await newUser();
    const b = await newUser();
    // Public, so that members of the old room may join the replacement without a new invite.
    const oldRoom = await a.createRoom({ visibility: "public", invite: [b.userId], name: "v1" });
    await b.joinRoom(oldRoom);
    await b.syncOnce();
    const tombstones: string[] = [];
    b.on("room.tombstone", (room, t) => void tombstones.push(`${room.roomId}->${t.replacementRoomId}`));
    const newRoom = await a.upgradeRoom(oldRoom, "11");
    for (let i = 0; i < 10 && tombstones.length === 0; i++) await b.syncOnce({ timeoutMs: 500 });
    assert.deepEqual(tombstones, [`${oldRoom}->${newRoom}`]);
    assert.equal(b.getRoom(oldRoom)?.tombstone?.replacementRoomId, newRoom);
    assert.equal(await b.followTombstone(oldRoom), newRoom);
    for (let i = 0; i < 10 && b.getRoom(newRoom)?.membership !== "join"; i++)
      await b.syncOnce({ timeoutMs: 500 });
    assert.equal(b.getRoom(newRoom)?.membership, "join");
    assert.deepEqual(b.getRoom(newRoom)?.predecessor?.roomId, oldRoom);
    // Following from the newest room goes nowhere.
    assert.equal(await b.followTombstone(newRoom), newRoom);
  });
});

describe(".well-known discovery", () => {
  let wk: Server;
  let wkHost: string;
  let doc: unknown;
  let status = 200;
  before(async () => {
    wk = createServer((req, res) => {
      if (req.url !== "/.well-known/matrix/client") {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(doc));
    });
    await new Promise<void>((r) => wk.listen(0, "127.0.0.1", r));
    wkHost = `127.0.0.1:${(wk.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => wk.close(() => r())));

  it("finds the homeserver from a user ID and logs in there", async () => {
    doc = { "m.homeserver": { base_url: `${hs.baseUrl}/` } };
    status = 200;
    const name = uniq("wk");
    const first = new MatrixClient({ homeserverUrl: hs.baseUrl });
    await first.register({ username: name, password: "pw" });
    const c = await MatrixClient.discover(`@${name}:${wkHost}`, { wellKnownScheme: "http" });
    assert.equal(c.homeserverUrl, hs.baseUrl);
    assert.equal((await c.login({ user: name, password: "pw" })).userId, first.userId);
  });

  it("accepts a homeserver URL directly after checking /versions", async () => {
    const c = await MatrixClient.discover(hs.baseUrl);
    assert.equal(c.homeserverUrl, hs.baseUrl);
  });

  it("fails with DISCOVERY_FAILED when the advertised URL is not a homeserver or not a URL", async () => {
    status = 200;
    doc = { "m.homeserver": { base_url: `http://${wkHost}` } };
    await assert.rejects(
      MatrixClient.discover(wkHost, { wellKnownScheme: "http" }),
      (e: unknown) => e instanceof ClientError && e.code === "DISCOVERY_FAILED",
    );
    doc = { "m.homeserver": { base_url: "javascript:alert(1)" } };
    await assert.rejects(
      MatrixClient.discover(wkHost, { wellKnownScheme: "http" }),
      (e: unknown) => e instanceof ClientError && e.code === "DISCOVERY_FAILED",
    );
    doc = { nothing: true };
    await assert.rejects(
      MatrixClient.discover(wkHost, { wellKnownScheme: "http" }),
      (e: unknown) => e instanceof ClientError && e.code === "DISCOVERY_FAILED",
    );
    status = 404;
    // 404 means "no delegation": the server name itself is tried, and it is not a homeserver.
    await assert.rejects(
      MatrixClient.discover(wkHost, { wellKnownScheme: "http" }),
      (e: unknown) => e instanceof ClientError && e.code === "DISCOVERY_FAILED",
    );
  });
});
