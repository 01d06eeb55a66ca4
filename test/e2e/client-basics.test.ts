// The client against the devserver: accounts and sessions, rooms, sync resume, pagination, media.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import {
  ClientError,
  FileClientStore,
  MatrixClient,
  MemoryClientStore,
  type RoomEvent,
  StoreMismatchError,
  toWebStream,
} from "../../src/index.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

let hs: TestDevServer;
let dir: string;
let n = 0;
const uniq = (p: string) => `${p}${++n}${Date.now().toString(36)}`;

before(async () => {
  hs = await startTestDevServer();
  dir = await mkdtemp(join(tmpdir(), "keyroom-client-e2e-"));
});
after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

async function newUser(name = uniq("u")): Promise<MatrixClient> {
  const c = new MatrixClient({
    homeserverUrl: hs.baseUrl,
    syncTimeoutMs: 1000,
    syncFilter: { room: { timeline: { limit: 100 } } },
  });
  await c.register({ username: name, password: "pw" });
  return c;
}

/** Syncs until `pred` holds (bounded by attempts, not time). */
async function syncUntil(c: MatrixClient, pred: () => boolean, attempts = 20): Promise<void> {
  for (let i = 0; i < attempts && !pred(); i++) await c.syncOnce({ timeoutMs: 500 });
  assert.ok(pred(), "condition not reached by sync");
}

async function deviceCount(c: MatrixClient): Promise<number> {
  const res = await hs.api("GET", "/devices", { token: accessToken(c) });
  return (res.json.devices as unknown[]).length;
}

/** Test-only: reads the token back from the store (the client never exposes it). */
const tokens = new Map<MatrixClient, string>();
function accessToken(c: MatrixClient): string {
  const t = tokens.get(c);
  if (!t) throw new Error("no token recorded");
  return t;
}
async function remember(c: MatrixClient): Promise<void> {
  const s = await c.store.loadSession();
  if (s) tokens.set(c, s.accessToken);
}

describe("client against the devserver", () => {
  it("registers, logs in by localpart, restores from a file store, and never creates a second device", async () => {
    const name = uniq("alice");
    const path = join(dir, `${name}.json`);
    const a = new MatrixClient({ homeserverUrl: hs.baseUrl, store: new FileClientStore(path) });
    const reg = await a.register({ username: name, password: "pw" });
    assert.equal(reg.userId, `@${name}:${hs.serverName}`);
    await remember(a);
    assert.equal((await a.whoami()).device_id, reg.deviceId);
    assert.equal(await deviceCount(a), 1);

    // Restart: restore from the file, same device, no login.
    const restored = await MatrixClient.fromStore(new FileClientStore(path), { syncTimeoutMs: 1000 });
    assert.deepEqual(restored.sessionInfo, reg);
    assert.equal((await restored.whoami()).user_id, reg.userId);

    // Logging in again (by localpart) with the same store reuses the device.
    const again = new MatrixClient({ homeserverUrl: hs.baseUrl, store: new FileClientStore(path) });
    const info = await again.login({ user: name, password: "pw" });
    assert.equal(info.deviceId, reg.deviceId);
    await remember(again);
    assert.equal(await deviceCount(again), 1);

    // Wrong password: a typed MatrixError.
    const bad = new MatrixClient({ homeserverUrl: hs.baseUrl });
    await assert.rejects(bad.login({ user: reg.userId, password: "nope" }), {
      name: "MatrixError",
      errcode: "M_FORBIDDEN",
    });

    await again.logout();
    assert.equal(again.isLoggedIn, false);
    assert.equal(await new FileClientStore(path).loadSession(), undefined);
  });

  it("creates rooms, invites, joins, sends every message kind and sees them through sync", async () => {
    const a = await newUser();
    const b = await newUser();
    const roomId = await a.createRoom({ name: "plain", invite: [b.userId], encrypted: false });
    await a.syncOnce();
    assert.equal(a.getRoom(roomId)?.name, "plain");
    assert.equal(a.getRoom(roomId)?.encrypted, false);

    const invites: string[] = [];
    b.on("room.invite", (room, inviter) => void invites.push(`${room.roomId}<${inviter}`));
    await b.syncOnce();
    assert.deepEqual(invites, [`${roomId}<${a.userId}`]);
    assert.equal(b.getRoom(roomId)?.membership, "invite");
    assert.equal(b.getRoom(roomId)?.name, "plain");
    await b.joinRoom(roomId);

    const t1 = await a.sendText(roomId, "hello");
    await a.sendNotice(roomId, "notice");
    await a.sendEmote(roomId, "waves");
    await a.sendHtml(roomId, "<b>bold</b>");
    const reply = await a.sendText(roomId, "a reply", { replyTo: t1 });
    await a.sendText(roomId, "in thread", { threadRootId: t1 });
    await a.editMessage(roomId, t1, "hello (edited)");
    await a.react(roomId, t1, "👍");
    await a.redact(roomId, reply, { reason: "oops" });
    await a.sendEvent(roomId, "org.example.custom", { x: 1 });
    await a.sendStateEvent(roomId, "org.example.state", "k", { y: 2 });
    await a.sendTyping(roomId, true);
    await a.sendReadReceipt(roomId, t1);

    const seen: RoomEvent[] = [];
    const typing: string[][] = [];
    const receipts: string[] = [];
    b.on("room.event", (_r, ev) => void seen.push(ev));
    b.on("room.typing", (_r, users) => void typing.push([...users]));
    b.on("room.receipt", (_r, content) => void receipts.push(...Object.keys(content)));
    await syncUntil(b, () => seen.some((e) => e.type === "org.example.state") && receipts.includes(t1));
    assert.ok(typing.some((u) => u.includes(a.userId)));
    // The redacted reply arrives with its content stripped.
    const bodies = seen
      .filter((e) => e.type === "m.room.message" && e.content.body !== undefined)
      .map((e) => [e.content.msgtype, e.content.body]);
    assert.deepEqual(bodies.slice(0, 4), [
      ["m.text", "hello"],
      ["m.notice", "notice"],
      ["m.emote", "waves"],
      ["m.text", "bold"],
    ]);
    const edit = seen.find(
      (e) => (e.content["m.relates_to"] as { rel_type?: string } | undefined)?.rel_type === "m.replace",
    );
    assert.deepEqual(edit?.content["m.new_content"], { msgtype: "m.text", body: "hello (edited)" });
    assert.ok(seen.some((e) => e.type === "m.reaction"));
    assert.ok(seen.some((e) => e.type === "m.room.redaction" && e.redacts === reply));
    assert.equal(b.getRoom(roomId)?.getState("org.example.state", "k")?.content.y, 2);
    assert.deepEqual(b.getRoom(roomId)?.joinedMemberIds.sort(), [a.userId, b.userId].sort());

    // Kick and ban are reflected in the other side's membership.
    await a.kick(roomId, b.userId, "bye");
    const mine: string[] = [];
    b.on("room.myMembership", (_r, m) => void mine.push(m));
    await syncUntil(b, () => mine.includes("leave"));
    await a.ban(roomId, b.userId);
    await a.syncOnce();
    assert.equal(a.getRoom(roomId)?.getMember(b.userId)?.membership, "ban");
  });

  it("creates private rooms encrypted by default and refuses plaintext there without an encryptor", async () => {
    const a = await newUser();
    const roomId = await a.createRoom({ name: "secret" });
    await a.syncOnce();
    assert.equal(a.getRoom(roomId)?.encryption?.algorithm, "m.megolm.v1.aes-sha2");
    await assert.rejects(a.sendText(roomId, "leak?"), {
      name: "ClientError",
      code: "ENCRYPTION_UNAVAILABLE",
    });
  });

  it("resumes sync after a restart with no event lost and none duplicated", async () => {
    const path = join(dir, `${uniq("resume")}.json`);
    const a = new MatrixClient({
      homeserverUrl: hs.baseUrl,
      store: new FileClientStore(path),
      syncTimeoutMs: 500,
    });
    await a.register({ username: uniq("r"), password: "pw" });
    const sender = await newUser();
    const roomId = await sender.createRoom({ encrypted: false, invite: [a.userId] });
    await a.joinRoom(roomId);

    const received: string[] = [];
    const sources = new Map<string, string>();
    a.on("room.event", (_r, ev, meta) => {
      if (ev.type !== "m.room.message") return;
      received.push(String(ev.content.body));
      sources.set(String(ev.content.body), meta.source);
    });
    for (let i = 0; i < 3; i++) await sender.sendText(roomId, `m${i}`);
    await a.startSync();
    await a.stopSync();
    await a.close();
    // Sent while the client is down: more than the server's default timeline limit (10), so the
    // next sync is `limited` and the client fills the gap through /messages.
    for (let i = 3; i < 30; i++) await sender.sendText(roomId, `m${i}`);

    const b = await MatrixClient.fromStore(new FileClientStore(path), { syncTimeoutMs: 500 });
    b.on("room.event", (_r, ev, meta) => {
      if (ev.type !== "m.room.message") return;
      received.push(String(ev.content.body));
      sources.set(String(ev.content.body), meta.source);
    });
    await syncUntil(b, () => received.includes("m29"));
    assert.deepEqual(
      received,
      Array.from({ length: 30 }, (_, i) => `m${i}`),
    );
    // The gap was there, and filled: some of the messages sent while down came from /messages.
    assert.equal(sources.get("m3"), "gap", JSON.stringify(Object.fromEntries(sources)));
    assert.equal(b.getRoom(roomId)?.membership, "join");
  });

  it("paginates history backwards and forwards", async () => {
    const a = await newUser();
    const roomId = await a.createRoom({ encrypted: false });
    for (let i = 0; i < 12; i++) await a.sendText(roomId, `h${i}`);
    const back: string[] = [];
    for await (const ev of a.history(roomId, { pageSize: 5 }))
      if (ev.type === "m.room.message") back.push(String(ev.content.body));
    assert.deepEqual(
      back,
      Array.from({ length: 12 }, (_, i) => `h${11 - i}`),
    );

    const page1 = await a.messages(roomId, { dir: "b", limit: 3 });
    assert.deepEqual(
      page1.events.map((e) => e.content.body),
      ["h11", "h10", "h9"],
    );
    assert.ok(page1.end);
    const forward = await a.messages(roomId, { dir: "f", from: page1.end, limit: 2 });
    assert.deepEqual(
      forward.events.map((e) => e.content.body),
      ["h9", "h10"],
    );
  });

  it("round-trips media through upload and authenticated download, buffered and streamed", async () => {
    const a = await newUser();
    const data = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    const mxc = await a.uploadMedia(data, { contentType: "application/octet-stream", filename: "blob.bin" });
    assert.match(mxc, /^mxc:\/\//);
    const got = await a.downloadMedia(mxc);
    assert.deepEqual(got.data, data);
    assert.equal(got.filename, "blob.bin");

    // Streamed upload and download.
    const stream = new ReadableStream<Uint8Array>({
      start(ctrl) {
        ctrl.enqueue(data.subarray(0, 1000));
        ctrl.enqueue(data.subarray(1000));
        ctrl.close();
      },
    });
    const mxc2 = await a.uploadMedia(stream, { contentType: "text/plain", size: data.byteLength });
    const { stream: down, contentType } = await a.downloadMediaStream(mxc2);
    assert.equal(contentType, "text/plain");
    const chunks: Uint8Array[] = [];
    for await (const c of down) chunks.push(c);
    assert.deepEqual(Buffer.concat(chunks), Buffer.from(data));

    // A Node stream (any async iterable of bytes) through toWebStream.
    const mxc3 = await a.uploadMedia(
      toWebStream(Readable.from([Buffer.from("node "), Buffer.from("stream")])),
      {
        contentType: "text/plain",
      },
    );
    assert.equal(Buffer.from((await a.downloadMedia(mxc3)).data).toString(), "node stream");

    await assert.rejects(a.downloadMedia(mxc, { maxBytes: 10 }), { name: "ClientError", code: "TOO_LARGE" });
    const roomId = await a.createRoom({ encrypted: false });
    const ev = await a.sendFile(roomId, data.subarray(0, 10), {
      filename: "f.png",
      contentType: "image/png",
    });
    assert.match(ev, /^\$/);
  });

  it("sendFile picks the msgtype from the content type whatever its case (MIME types are case-insensitive)", async () => {
    const a = await newUser();
    const roomId = await a.createRoom({ encrypted: false });
    const sent: [string, string][] = [
      ["Image/PNG", "m.image"],
      ["VIDEO/mp4", "m.video"],
      ["Audio/Ogg; codecs=opus", "m.audio"],
      ["Application/PDF", "m.file"],
    ];
    for (const [contentType] of sent) {
      await a.sendFile(roomId, new Uint8Array(3), { filename: "f", contentType });
    }
    const page = await a.messages(roomId, { dir: "b", limit: 10 });
    const got = page.events
      .filter((e) => e.type === "m.room.message")
      .reverse()
      .map((e) => [(e.content.info as { mimetype: string }).mimetype, e.content.msgtype]);
    assert.deepEqual(got, sent);
  });

  it("keeps direct-message rooms in m.direct", async () => {
    const a = await newUser();
    const b = await newUser();
    const dm = await a.createDirectRoom(b.userId, { encrypted: false });
    await a.syncOnce();
    assert.deepEqual(a.getDirectRoomIds(b.userId), [dm]);
    assert.equal(await a.createDirectRoom(b.userId), dm);
  });

  it("sets and reads profiles, and resolves and joins by alias", async () => {
    const a = await newUser();
    const b = await newUser();
    await a.setDisplayName("Alice A.");
    assert.deepEqual(await b.getProfile(a.userId), { displayName: "Alice A." });
    const alias = uniq("lobby");
    const roomId = await a.createRoom({ visibility: "public", alias });
    const full = `#${alias}:${hs.serverName}`;
    assert.equal((await b.resolveRoomAlias(full)).roomId, roomId);
    assert.equal(await b.joinRoom(full), roomId);
    await assert.rejects(b.resolveRoomAlias(`#nope${alias}:${hs.serverName}`), {
      name: "MatrixError",
      errcode: "M_NOT_FOUND",
    });
  });

  it("a session store shared by two tabs: a logout leaves the other's session, a restore writes nothing back", async () => {
    /** A store whose n-th `loadSession` from now first lets another tab act (the race, made deterministic). */
    class SharedStore extends MemoryClientStore {
      #act: { at: number; run: () => Promise<void> } | undefined;
      actAtLoad(at: number, run: () => Promise<void>): void {
        this.#act = { at, run };
      }
      override async loadSession() {
        const act = this.#act;
        if (act !== undefined && --act.at === 0) {
          this.#act = undefined;
          await act.run();
        }
        return super.loadSession();
      }
    }
    const shared = new SharedStore();
    const name = uniq("tabs");
    const tab1 = new MatrixClient({ homeserverUrl: hs.baseUrl, store: shared });
    await tab1.register({ username: name, password: "pw" });
    const tab2 = new MatrixClient({ homeserverUrl: hs.baseUrl, store: shared });
    await tab2.login({ user: name, password: "pw", deviceId: "TABTWO" });
    await tab1.logout();
    assert.equal((await shared.loadSession())?.deviceId, "TABTWO", "tab 1's logout kept tab 2's session");

    // A third context restores from the store while tab 2 logs out in between its two reads.
    shared.actAtLoad(2, () => tab2.logout());
    await assert.rejects(
      MatrixClient.fromStore(shared),
      (e) => e instanceof ClientError && e.code === "NOT_LOGGED_IN",
    );
    assert.equal(await shared.loadSession(), undefined, "the logged-out session was not written back");
  });

  it("a login the crypto store refuses leaves the shared session store as it was, and no new device", async () => {
    const shared = new MemoryClientStore();
    const encryption = { store: { directory: join(dir, uniq("shared-crypto")) } };
    const name = uniq("refused");
    const tab1 = new MatrixClient({ homeserverUrl: hs.baseUrl, store: shared, encryption });
    await tab1.register({ username: name, password: "pw" });
    const before = await shared.loadSession();
    // A second tab logging in at the same moment: its reads before the login (is there a session,
    // and a device to reuse?) came before tab 1 saved, so the server makes another device, which
    // the crypto store (tab 1's device) refuses.
    let blindReads = 2;
    const seenByTab2 = new Proxy(shared, {
      get(target, prop) {
        if (prop === "loadSession" && blindReads > 0) {
          blindReads -= 1;
          return async () => undefined;
        }
        const v: unknown = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const tab2 = new MatrixClient({ homeserverUrl: hs.baseUrl, store: seenByTab2, encryption });
    await assert.rejects(tab2.login({ user: name, password: "pw" }), (e) => e instanceof StoreMismatchError);
    assert.equal(blindReads, 0);
    assert.deepEqual(await shared.loadSession(), before, "tab 1's session is still the saved one");
    await remember(tab1);
    assert.equal(await deviceCount(tab1), 1, "the refused device was logged out");
    await tab1.close();
    await tab2.close();
  });

  it("works with a memory store passed explicitly", async () => {
    const c = new MatrixClient({ homeserverUrl: hs.baseUrl, store: new MemoryClientStore() });
    await c.register({ username: uniq("m"), password: "pw" });
    assert.equal((await c.joinedRoomIds()).length, 0);
  });
});
