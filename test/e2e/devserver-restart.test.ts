// A devserver on a file database restarted mid-conversation keeps users, tokens, rooms, keys,
// to-device queues and sync positions.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

const dir = mkdtempSync(join(tmpdir(), "keyroom-devserver-"));
after(() => rmSync(dir, { recursive: true, force: true }));

it("restart keeps users, rooms, keys, to-device queues and sync positions", async () => {
  const dbPath = join(dir, "dev.sqlite");
  let s: TestDevServer = await startTestDevServer({ memory: false, dbPath });
  const alice = await s.register("alice", "pw-a");
  const bob = await s.register("bob", "pw-b");
  const room = (
    await s.api("POST", "/createRoom", { token: alice.accessToken, body: { invite: [bob.userId] } })
  ).json.room_id as string;
  const r = encodeURIComponent(room);
  await s.api("POST", `/rooms/${r}/join`, { token: bob.accessToken, body: {} });
  await s.api("PUT", `/rooms/${r}/send/m.room.message/1`, {
    token: alice.accessToken,
    body: { body: "before" },
  });
  const otk = { "signed_curve25519:AAAA": { key: "k1", signatures: {} } };
  await s.api("POST", "/keys/upload", { token: bob.accessToken, body: { one_time_keys: otk } });
  const bobSync = await s.api("GET", "/sync", { token: bob.accessToken });
  const since = bobSync.json.next_batch as string;
  await s.api("PUT", "/sendToDevice/m.test/tx1", {
    token: alice.accessToken,
    body: { messages: { [bob.userId]: { [bob.deviceId]: { n: 1 } } } },
  });
  await s.api("PUT", `/user/${encodeURIComponent(alice.userId)}/account_data/m.test`, {
    token: alice.accessToken,
    body: { v: 1 },
  });
  await s.close();

  s = await startTestDevServer({ memory: false, dbPath });
  try {
    const who = await s.api("GET", "/account/whoami", { token: bob.accessToken });
    assert.equal(who.json.user_id, bob.userId, "access token survives");
    await s.api("PUT", `/rooms/${r}/send/m.room.message/2`, {
      token: alice.accessToken,
      body: { body: "after" },
    });
    const next = await s.api("GET", `/sync?since=${since}`, { token: bob.accessToken });
    const bodies = next.json.rooms.join[room].timeline.events.map(
      (e: { content: { body: string } }) => e.content.body,
    );
    assert.deepEqual(bodies, ["after"], "the old token resumes exactly where it left off");
    assert.deepEqual(next.json.to_device.events, [
      { type: "m.test", sender: alice.userId, content: { n: 1 } },
    ]);
    assert.equal(next.json.device_one_time_keys_count.signed_curve25519, 1);
    const claim = await s.api("POST", "/keys/claim", {
      token: alice.accessToken,
      body: { one_time_keys: { [bob.userId]: { [bob.deviceId]: "signed_curve25519" } } },
    });
    assert.deepEqual(claim.json.one_time_keys[bob.userId][bob.deviceId], otk);
    const ad = await s.api("GET", `/user/${encodeURIComponent(alice.userId)}/account_data/m.test`, {
      token: alice.accessToken,
    });
    assert.deepEqual(ad.json, { v: 1 });
    const msgs = await s.api("GET", `/rooms/${r}/messages?dir=b&limit=50`, { token: bob.accessToken });
    const all = msgs.json.chunk
      .filter((e: { type: string }) => e.type === "m.room.message")
      .map((e: { content: { body: string } }) => e.content.body);
    assert.deepEqual(all, ["after", "before"]);
    const relogin = await s.api("POST", "/login", {
      body: { type: "m.login.password", identifier: { type: "m.id.user", user: "alice" }, password: "pw-a" },
    });
    assert.equal(relogin.status, 200, "password survives");
  } finally {
    await s.close();
  }
});

it("upgrades a database written by an older schema and refuses a newer one", async () => {
  const Database = (await import("better-sqlite3")).default;
  const { MIGRATIONS } = await import("../../src/devserver/storage/migrations.ts");
  const { hashToken } = await import("../../src/devserver/storage/index.ts");
  const { startDevServer } = await import("../../src/devserver/index.ts");
  const oldPath = join(dir, "v1.sqlite");
  const db = new Database(oldPath);
  db.exec(MIGRATIONS[0]!);
  db.pragma("user_version = 1");
  db.prepare("INSERT INTO users (user_id, created_ts) VALUES ('@old:localhost', 0)").run();
  db.prepare("INSERT INTO devices (user_id, device_id) VALUES ('@old:localhost', 'OLD')").run();
  db.prepare("INSERT INTO access_tokens VALUES (?, '@old:localhost', 'OLD')").run(hashToken("old-token"));
  db.close();
  const s = await startDevServer({ port: 0, dbPath: oldPath });
  try {
    const who = await fetch(`${s.baseUrl}/_matrix/client/v3/account/whoami`, {
      headers: { Authorization: "Bearer old-token" },
    });
    assert.equal(((await who.json()) as { user_id: string }).user_id, "@old:localhost");
  } finally {
    await s.close();
  }
  const newer = new Database(oldPath);
  newer.pragma("user_version = 99");
  newer.close();
  await assert.rejects(startDevServer({ port: 0, dbPath: oldPath }), { code: "SCHEMA_TOO_NEW" });
});
