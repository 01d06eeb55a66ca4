import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import type { StateEvent } from "../../wire/index.ts";
import { ClientError } from "../errors.ts";
import { namedRoom } from "../test-support/room-state.ts";
import { FileClientStore } from "./file-store.ts";
import { IndexedDbClientStore } from "./idb-store.ts";
import { MemoryClientStore } from "./memory-store.ts";
import { SqliteClientStore } from "./sqlite-store.ts";
import { type ClientStore, copyJson, type RoomSnapshot } from "./store.ts";

const session = { homeserverUrl: "https://hs", userId: "@a:hs", deviceId: "D", accessToken: "tok-secret" };

const SUMMARY = {
  summary: { heroes: ["@h1:hs", "@h2:hs"], joinedMemberCount: 3, invitedMemberCount: 1 },
  unread: {
    notificationCount: 4,
    highlightCount: 1,
    threads: [{ threadId: "$t", notificationCount: 2, highlightCount: 0 }],
  },
} satisfies Partial<RoomSnapshot>;

const dir = await mkdtemp(join(tmpdir(), "keyroom-store-"));
after(() => rm(dir, { recursive: true, force: true }));

async function conformance(
  make: () => ClientStore | Promise<ClientStore>,
  reopen: () => ClientStore | Promise<ClientStore>,
) {
  const s = await make();
  assert.equal(await s.loadSession(), undefined);
  assert.equal(await s.loadSync(), undefined);
  await s.saveSession(session);
  await s.saveSync({
    nextBatch: "s1",
    rooms: [namedRoom("!a", "A"), { ...namedRoom("!b", "B"), ...SUMMARY }],
    accountData: [{ type: "m.direct", content: {} }],
  });
  await s.saveSync({ nextBatch: "s2", rooms: [namedRoom("!a", "A2")], accountData: [] });
  await s.close?.();
  const r = await reopen();
  assert.deepEqual(await r.loadSession(), session);
  const sync = await r.loadSync();
  assert.equal(sync?.nextBatch, "s2");
  assert.deepEqual(
    sync?.rooms.map((x) => [x.roomId, x.state[0]?.content.name]),
    [
      ["!a", "A2"],
      ["!b", "B"],
    ],
  );
  // The room summary and unread counts sync gave are kept (the display name, the badges).
  assert.deepEqual(
    sync?.rooms.map((x) => ({ summary: x.summary, unread: x.unread })),
    [{ summary: undefined, unread: undefined }, { ...SUMMARY }],
  );
  assert.deepEqual(
    sync?.accountData.map((e) => e.type),
    ["m.direct"],
  );
  // Forgotten rooms (`forgetRoom`, MAX_LEFT_ROOMS) go, with all they held; an unknown one is no error.
  await r.saveSync({
    nextBatch: "s3",
    rooms: [namedRoom("!c", "C")],
    accountData: [],
    forgotten: ["!b", "!never"],
  });
  await r.close?.();
  const f = await reopen();
  const afterForget = await f.loadSync();
  assert.equal(afterForget?.nextBatch, "s3");
  assert.deepEqual(
    afterForget?.rooms.map((x) => x.roomId),
    ["!a", "!c"],
  );
  // Back again (invited anew): only what the new snapshot holds.
  await f.saveSync({ nextBatch: "s4", rooms: [{ ...namedRoom("!b", "B2"), state: [] }], accountData: [] });
  await f.close?.();
  const b = await reopen();
  assert.deepEqual((await b.loadSync())?.rooms.map((x) => [x.roomId, x.state.length]).sort(), [
    ["!a", 1],
    ["!b", 0],
    ["!c", 1],
  ]);
  if (b.clearIf !== undefined) {
    // A logout (`Session.forget`): the store holds another session (another tab's), which stays.
    assert.equal(await b.clearIf((stored) => stored?.accessToken === "tok-other"), false);
    assert.deepEqual(await b.loadSession(), session);
    assert.equal((await b.loadSync())?.nextBatch, "s4");
    assert.equal(await b.clearIf((stored) => stored?.accessToken === session.accessToken), true);
    assert.equal(await b.loadSession(), undefined);
    assert.equal(await b.loadSync(), undefined);
  }
  await b.clear();
  assert.equal(await b.loadSession(), undefined);
  assert.equal(await b.loadSync(), undefined);
  if (b.saveSessionIf !== undefined) {
    // A login (`Session.adopt`): saved only over what it expects; over the same device, the sync
    // state stays; over another device or user, it goes.
    await b.saveSession(session);
    await b.saveSync({ nextBatch: "s5", rooms: [namedRoom("!a", "A")], accountData: [] });
    const newToken = { ...session, accessToken: "tok-new" };
    assert.equal(await b.saveSessionIf(newToken, () => false), false);
    assert.deepEqual(await b.loadSession(), session);
    assert.equal(await b.saveSessionIf(newToken, (stored) => stored?.accessToken === "tok-secret"), true);
    assert.deepEqual(await b.loadSession(), newToken);
    assert.equal((await b.loadSync())?.nextBatch, "s5");
    const otherDevice = { ...session, deviceId: "D2", accessToken: "tok-d2" };
    assert.equal(await b.saveSessionIf(otherDevice, () => true), true);
    assert.deepEqual(await b.loadSession(), otherDevice);
    assert.equal(await b.loadSync(), undefined);
    await b.clear();
  }
  // A refreshed session (`TokenRefresher`): its refresh token, expiry and a refresh claim come back
  // as saved, and a save that changes only them is saved (the access token may stay the same).
  const refreshed = {
    ...session,
    refreshToken: "rt-secret",
    accessTokenExpiresAt: 1_700_000_000_000,
    refreshClaim: { by: "tab-1", until: 1_700_000_030_000 },
  };
  await b.saveSession(refreshed);
  const { refreshClaim: _, ...unclaimed } = refreshed;
  await b.saveSession(unclaimed);
  await b.close?.();
  const c = await reopen();
  assert.deepEqual(await c.loadSession(), unclaimed);
  await c.saveSession(refreshed);
  await c.close?.();
  const d = await reopen();
  assert.deepEqual(await d.loadSession(), refreshed);
  await d.clear();
  await d.close?.();
}

describe("client stores", () => {
  it("MemoryClientStore keeps session and merged sync state", async () => {
    const m = new MemoryClientStore();
    await conformance(
      () => m,
      () => m,
    );
  });

  it("IndexedDbClientStore persists across instances, and refuses corrupt records", async () => {
    const opts = { name: "client-store-test" };
    await conformance(
      () => new IndexedDbClientStore(opts),
      () => new IndexedDbClientStore(opts),
    );
    const s = new IndexedDbClientStore(opts);
    await s.saveSession({ ...session, userId: "" });
    await assert.rejects(
      s.loadSession(),
      (e: unknown) => e instanceof ClientError && e.code === "STORE_CORRUPT",
    );
    await s.close();
  });

  it("IndexedDbClientStore saves nothing of a response when IndexedDB refuses one of its values", async () => {
    // IndexedDB refuses a value as the request is made (here one it cannot clone; in Chromium,
    // also one past its value size limit): the rooms put before it in the same transaction must
    // not commit without the response's token.
    const s = new IndexedDbClientStore({ name: "client-store-refused" });
    await s.saveSync({ nextBatch: "s1", rooms: [namedRoom("!a:hs", "a")], accountData: [] });
    const unclonable = { ...namedRoom("!c:hs", "c"), accountData: [{ type: "x", content: { f: () => 1 } }] };
    await assert.rejects(
      s.saveSync({ nextBatch: "s2", rooms: [namedRoom("!b:hs", "b"), unclonable], accountData: [] }),
      (e: unknown) =>
        e instanceof ClientError &&
        e.code === "STORE_FAILED" &&
        e.cause instanceof DOMException &&
        e.cause.name === "DataCloneError",
    );
    const back = await s.loadSync();
    assert.equal(back?.nextBatch, "s1");
    assert.deepEqual(
      back?.rooms.map((r) => r.roomId),
      ["!a:hs"],
    );
    await s.close();
  });

  it("FileClientStore persists across instances, with a 0600 file", async () => {
    const p = join(dir, "a", "client.json");
    await conformance(
      () => new FileClientStore(p),
      () => new FileClientStore(p),
    );
    assert.equal((await stat(p)).mode & 0o777, 0o600);
  });

  it("SqliteClientStore persists across instances, with a 0600 file", async () => {
    const p = join(dir, "b", "client.sqlite3");
    await conformance(
      () => SqliteClientStore.open(p),
      () => SqliteClientStore.open(p),
    );
    assert.equal((await stat(p)).mode & 0o777, 0o600);
  });

  it("SqliteClientStore refuses corrupt rows and newer schemas with STORE_CORRUPT", async () => {
    const p = join(dir, "c.sqlite3");
    const s = await SqliteClientStore.open(p);
    await s.close();
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(p);
    db.prepare("INSERT INTO session (id, json) VALUES (1, ?)").run('{"userId":5}');
    db.close();
    const s2 = await SqliteClientStore.open(p);
    await assert.rejects(
      s2.loadSession(),
      (e: unknown) => e instanceof ClientError && e.code === "STORE_CORRUPT",
    );
    await s2.close();
    const db2 = new Database(p);
    db2.pragma("user_version = 99");
    db2.close();
    await assert.rejects(
      SqliteClientStore.open(p),
      (e: unknown) => e instanceof ClientError && e.code === "STORE_CORRUPT",
    );
  });

  it("FileClientStore refuses a corrupt file with STORE_CORRUPT", async () => {
    const p = join(dir, "bad.json");
    await writeFile(p, JSON.stringify({ version: 1, session: { userId: 5 } }));
    await assert.rejects(
      new FileClientStore(p).loadSession(),
      (e: unknown) => e instanceof ClientError && e.code === "STORE_CORRUPT",
    );
    await writeFile(p, "{not json");
    await assert.rejects(
      new FileClientStore(p).loadSync(),
      (e: unknown) => e instanceof ClientError && e.code === "STORE_CORRUPT",
    );
  });

  it("serializes concurrent writes in call order", async () => {
    const p = join(dir, "order.json");
    const s = new FileClientStore(p);
    await Promise.all(
      [1, 2, 3, 4, 5].map((n) => s.saveSync({ nextBatch: `s${n}`, rooms: [], accountData: [] })),
    );
    const onDisk = JSON.parse(await readFile(p, "utf8")) as { sync: { nextBatch: string } };
    assert.equal(onDisk.sync.nextBatch, "s5");
  });

  it("MemoryClientStore keeps its own copy of what it is given and of what it returns", async () => {
    const m = new MemoryClientStore();
    const given = namedRoom("!a", "A");
    await m.saveSync({ nextBatch: "s1", rooms: [given], accountData: [] });
    const first = given.state[0];
    if (first !== undefined) first.content.name = "changed";
    const loaded = (await m.loadSync())?.rooms[0]?.state[0];
    assert.equal(loaded?.content.name, "A");
    if (loaded !== undefined) loaded.content.name = "changed";
    assert.equal((await m.loadSync())?.rooms[0]?.state[0]?.content.name, "A");
  });

  it("MemoryClientStore keeps its copy of a room's state while the client's frozen array is the same", async () => {
    const m = new MemoryClientStore();
    const state = Object.freeze(namedRoom("!a", "A").state) as StateEvent[];
    await m.saveSync({ nextBatch: "s1", rooms: [{ ...namedRoom("!a", "A"), state }], accountData: [] });
    // Read-only by contract (`RoomSnapshot.state`): changed here only to see that it is not copied again.
    const first = state[0];
    if (first !== undefined) first.content.name = "changed";
    const same = { ...namedRoom("!a", "A"), state, prevBatch: "p2" };
    await m.saveSync({ nextBatch: "s2", rooms: [same], accountData: [] });
    const back = (await m.loadSync())?.rooms[0];
    assert.equal(back?.state[0]?.content.name, "A", "the copy of the first save");
    assert.equal(back?.prevBatch, "p2");
    // A new array (the state changed), or one not frozen: copied.
    await m.saveSync({ nextBatch: "s3", rooms: [{ ...same, state: [...state] }], accountData: [] });
    assert.equal((await m.loadSync())?.rooms[0]?.state[0]?.content.name, "changed");
  });

  it("copyJson copies JSON values as structuredClone does", () => {
    const proto = JSON.parse('{"__proto__":{"a":1},"b":[{"__proto__":2}]}') as unknown;
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.constant(proto)), (v) => {
        const copy = copyJson(v);
        assert.deepStrictEqual(copy, structuredClone(v));
        if (typeof v === "object" && v !== null) assert.notEqual(copy, v);
      }),
    );
    assert.deepEqual(Object.keys(copyJson(proto) as object), ["__proto__", "b"]);
    assert.equal(Object.getPrototypeOf(copyJson(proto)), Object.prototype);
  });

  it("does not show the access token when inspected", async () => {
    const m = new MemoryClientStore();
    await m.saveSession(session);
    const { inspect } = await import("node:util");
    assert.ok(!inspect(m).includes("tok-secret"));
    assert.ok(!JSON.stringify(m).includes("tok-secret"));
  });
});
