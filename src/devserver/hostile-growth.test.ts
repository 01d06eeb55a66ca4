// What one client can make the devserver keep is bounded by a named constant: the routes are called
// in process (no HTTP), and queues are filled through the store where reaching a bound by requests
// alone would take too long.
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { afterEach, beforeEach, describe, it } from "node:test";
import { MatrixError } from "./errors.ts";
import { canonicalJson } from "./event-format.ts";
import { Homeserver, MAX_DEVICES_PER_ACCOUNT, type Session } from "./homeserver.ts";
import { MAX_ALIAS_BYTES, MAX_ALIASES_PER_USER } from "./room-ops.ts";
import { MAX_ACCOUNT_DATA_BYTES_PER_USER } from "./routes/account-data.ts";
import { MAX_PUBLIC_ROOMS_PAGE } from "./routes/directory.ts";
import { buildRouter } from "./routes/index.ts";
import {
  MAX_BACKUP_AUTH_DATA_BYTES,
  MAX_BACKUP_KEYS_PER_VERSION,
  MAX_BACKUP_SESSION_DATA_BYTES,
} from "./routes/key-backup.ts";
import {
  MAX_DEVICE_KEYS_BYTES,
  MAX_FALLBACK_KEYS_PER_DEVICE,
  MAX_ONE_TIME_KEY_BYTES,
  MAX_ONE_TIME_KEYS_PER_DEVICE,
} from "./routes/keys.ts";
import { MAX_LONG_POLLS_PER_DEVICE } from "./routes/sync.ts";
import { MAX_TO_DEVICE_MESSAGE_BYTES, MAX_TO_DEVICE_QUEUE_PER_DEVICE } from "./routes/to-device.ts";
import { MAX_RATE_LIMIT_BUCKETS, RateLimiter } from "./server.ts";
import {
  MAX_ACCESS_TOKENS_PER_DEVICE,
  MAX_FILTERS_PER_USER,
  MAX_TXNS_PER_DEVICE,
} from "./storage/accounts.ts";
import { MAX_BACKUP_VERSIONS_PER_USER } from "./storage/misc.ts";
import { Uia } from "./uia.ts";

let hs: Homeserver;
let call: (
  method: string,
  path: string,
  session: Session | undefined,
  body?: unknown,
  signal?: AbortSignal,
) => Promise<{ status: number; json: { errcode?: string; [k: string]: unknown } }>;

function start(config: { maxMediaBytesPerUser?: number } = {}): void {
  hs = new Homeserver({ serverName: "localhost", dbPath: ":memory:", ...config });
  const router = buildRouter({ hs, uia: new Uia(hs), baseUrl: () => "http://localhost" });
  call = async (method, path, session, body, signal = new AbortController().signal) => {
    const url = new URL(path.startsWith("/_matrix") ? path : `/_matrix/client/v3${path}`, "http://localhost");
    const m = router.match(method, url.pathname);
    try {
      const r = await m.handler({
        method,
        path: url.pathname,
        params: m.params,
        query: url.searchParams,
        headers: {},
        rawBody: Buffer.isBuffer(body) ? body : Buffer.from(body === undefined ? "" : JSON.stringify(body)),
        ip: "",
        auth: session && hs.authenticate(session.token),
        signal,
      });
      return { status: r.status ?? 200, json: ("json" in r ? r.json : {}) as { errcode?: string } };
    } catch (e) {
      if (e instanceof MatrixError) return { status: e.status, json: e.toBody() };
      throw e;
    }
  };
}
beforeEach(() => start());
afterEach(() => hs.close());

function user(localpart: string, deviceId?: string): Session {
  const userId = `@${localpart}:localhost`;
  hs.accounts.createUser(userId, null, localpart);
  return hs.createSession(userId, deviceId, null, "");
}

describe("to-device queue of a device that never syncs", () => {
  it(`holds at most MAX_TO_DEVICE_QUEUE_PER_DEVICE messages; other devices still get theirs`, async () => {
    const alice = user("alice");
    const idle = user("bob", "IDLE");
    const active = hs.createSession(idle.userId, "ACTIVE", null, "");
    hs.tx(() => {
      for (let i = 1; i < MAX_TO_DEVICE_QUEUE_PER_DEVICE; i++) {
        hs.keys.queueToDevice(hs.stream.next(), idle.userId, "IDLE", '{"type":"m.x","content":{}}');
      }
    });
    for (const txn of ["t1", "t2", "t3"]) {
      const r = await call("PUT", `/sendToDevice/m.flood/${txn}`, alice, {
        messages: { [idle.userId]: { IDLE: { n: txn }, ACTIVE: { n: txn } } },
      });
      assert.equal(r.status, 200);
    }
    assert.equal(hs.keys.queuedToDevice(idle.userId, "IDLE"), MAX_TO_DEVICE_QUEUE_PER_DEVICE);
    assert.equal(hs.keys.queuedToDevice(idle.userId, "ACTIVE"), 3);
    const sync = await call("GET", "/sync", active);
    assert.equal((sync.json.to_device as { events: unknown[] }).events.length, 3);
  });
});

describe("to-device message size", () => {
  it("a message past MAX_TO_DEVICE_MESSAGE_BYTES is 413 M_TOO_LARGE and the request queues nothing", async () => {
    const alice = user("alice");
    const bob = user("bob");
    const r = await call("PUT", "/sendToDevice/m.big/t1", alice, {
      messages: {
        [bob.userId]: { [bob.deviceId]: { pad: "x".repeat(MAX_TO_DEVICE_MESSAGE_BYTES) } },
        [alice.userId]: { "*": {} },
      },
    });
    assert.deepEqual([r.status, r.json.errcode], [413, "M_TOO_LARGE"]);
    assert.equal(hs.keys.queuedToDevice(bob.userId, bob.deviceId), 0);
    assert.equal(hs.keys.queuedToDevice(alice.userId, alice.deviceId), 0);
    const ok = await call("PUT", "/sendToDevice/m.big/t1", alice, {
      messages: { [bob.userId]: { [bob.deviceId]: { pad: "x".repeat(MAX_TO_DEVICE_MESSAGE_BYTES - 100) } } },
    });
    assert.equal(ok.status, 200, "the refused transaction ID was not remembered");
    assert.equal(hs.keys.queuedToDevice(bob.userId, bob.deviceId), 1);
  });
});

describe("keys a device may hold", () => {
  const otks = (from: number, n: number) =>
    Object.fromEntries(
      Array.from({ length: n }, (_, i) => [`signed_curve25519:K${from + i}`, { key: `k${from + i}` }]),
    );

  it(`at most MAX_ONE_TIME_KEYS_PER_DEVICE one-time keys; a refused upload stores nothing`, async () => {
    const alice = user("alice");
    for (let i = 0; i < MAX_ONE_TIME_KEYS_PER_DEVICE; i += 1000) {
      const r = await call("POST", "/keys/upload", alice, { one_time_keys: otks(i, 1000) });
      assert.equal(r.status, 200, JSON.stringify(r.json));
    }
    // Uploading keys it already holds again is no growth.
    assert.equal((await call("POST", "/keys/upload", alice, { one_time_keys: otks(0, 10) })).status, 200);
    const over = await call("POST", "/keys/upload", alice, {
      one_time_keys: otks(MAX_ONE_TIME_KEYS_PER_DEVICE, 1),
      fallback_keys: { "signed_curve25519:F": { key: "f" } },
    });
    assert.deepEqual([over.status, over.json.errcode], [403, "M_FORBIDDEN"]);
    assert.deepEqual(hs.keys.storedKeyCounts(alice.userId, alice.deviceId), {
      oneTime: MAX_ONE_TIME_KEYS_PER_DEVICE,
      fallback: 0,
    });
    // One claimed makes room for one.
    const bob = user("bob");
    const claim = await call("POST", "/keys/claim", bob, {
      one_time_keys: { [alice.userId]: { [alice.deviceId]: "signed_curve25519" } },
    });
    assert.equal(claim.status, 200);
    const again = await call("POST", "/keys/upload", alice, {
      one_time_keys: otks(MAX_ONE_TIME_KEYS_PER_DEVICE, 1),
    });
    assert.equal(again.status, 200);
  });

  it("at most MAX_FALLBACK_KEYS_PER_DEVICE fallback keys", async () => {
    const alice = user("alice");
    const fallbacks = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`alg${i}:F`, { key: `f${i}` }]));
    const ok = await call("POST", "/keys/upload", alice, {
      fallback_keys: fallbacks(MAX_FALLBACK_KEYS_PER_DEVICE),
    });
    assert.equal(ok.status, 200);
    const over = await call("POST", "/keys/upload", alice, {
      fallback_keys: fallbacks(MAX_FALLBACK_KEYS_PER_DEVICE + 1),
    });
    assert.deepEqual([over.status, over.json.errcode], [403, "M_FORBIDDEN"]);
    assert.equal(
      hs.keys.storedKeyCounts(alice.userId, alice.deviceId).fallback,
      MAX_FALLBACK_KEYS_PER_DEVICE,
    );
  });
});

describe("accounts, tokens, transaction IDs and filters", () => {
  const count = (sql: string, ...args: string[]) => (hs.db.prepare(sql).get(...args) as { n: number }).n;

  it("an account has at most MAX_DEVICES_PER_ACCOUNT devices; deleting one makes room", () => {
    const alice = user("alice", "D0");
    for (let i = 1; i < MAX_DEVICES_PER_ACCOUNT; i++) hs.createSession(alice.userId, `D${i}`, null, "");
    assert.throws(() => hs.createSession(alice.userId, undefined, null, ""), {
      status: 403,
      code: "M_FORBIDDEN",
    });
    // Logging in again on a device it has is fine.
    assert.ok(hs.createSession(alice.userId, "D1", null, "").token);
    hs.deleteDevice(alice.userId, "D1");
    assert.ok(hs.createSession(alice.userId, undefined, null, "").token);
    assert.equal(hs.accounts.countDevices(alice.userId), MAX_DEVICES_PER_ACCOUNT);
  });

  it("what is remembered per device in memory goes with the device", async () => {
    const alice = user("alice");
    for (let i = 0; i < 50; i++) {
      const d = hs.createSession(alice.userId, `TMP${i}`, null, "");
      const first = await call("GET", "/sync", d);
      await call("GET", `/sync?since=${encodeURIComponent(String(first.json.next_batch))}`, d);
      hs.deleteDevice(alice.userId, `TMP${i}`);
    }
    assert.equal((Reflect.get(hs, "toDeviceAcked") as Map<string, number>).size, 0);
  });

  it("a device keeps at most MAX_ACCESS_TOKENS_PER_DEVICE tokens, the newest", () => {
    const first = user("alice", "DEV");
    hs.authenticate(first.token); // cached: the bound must reach the cache too
    let last = first;
    for (let i = 0; i < MAX_ACCESS_TOKENS_PER_DEVICE + 5; i++) {
      last = hs.createSession(first.userId, "DEV", null, "", i % 2 === 0);
    }
    assert.throws(() => hs.authenticate(first.token), { status: 401, code: "M_UNKNOWN_TOKEN" });
    assert.equal(hs.authenticate(last.token).deviceId, "DEV");
    assert.equal(
      count("SELECT COUNT(*) AS n FROM access_tokens WHERE device_id = ?", "DEV"),
      MAX_ACCESS_TOKENS_PER_DEVICE,
    );
    assert.ok(
      count("SELECT COUNT(*) AS n FROM refresh_tokens WHERE device_id = ?", "DEV") <=
        MAX_ACCESS_TOKENS_PER_DEVICE,
    );
  });

  it("a device's transaction IDs are remembered up to MAX_TXNS_PER_DEVICE, the newest", async () => {
    const alice = user("alice");
    for (let i = 0; i <= MAX_TXNS_PER_DEVICE; i++) {
      assert.equal((await call("PUT", `/sendToDevice/m.x/t${i}`, alice, { messages: {} })).status, 200);
    }
    assert.equal(
      count("SELECT COUNT(*) AS n FROM txns WHERE user_id = ?", alice.userId),
      MAX_TXNS_PER_DEVICE,
    );
    // A retry of a recent one is still recognised: nothing queued twice.
    const msg = { messages: { [alice.userId]: { [alice.deviceId]: { n: 1 } } } };
    await call("PUT", "/sendToDevice/m.x/retry", alice, msg);
    await call("PUT", "/sendToDevice/m.x/retry", alice, msg);
    assert.equal(hs.keys.queuedToDevice(alice.userId, alice.deviceId), 1);
  });

  it("a user keeps at most MAX_FILTERS_PER_USER filters; an identical one is not stored again", async () => {
    const alice = user("alice");
    const path = `/user/${encodeURIComponent(alice.userId)}/filter`;
    const same = await call("POST", path, alice, { room: { timeline: { limit: 5 } } });
    const again = await call("POST", path, alice, { room: { timeline: { limit: 5 } } });
    assert.equal(again.json.filter_id, same.json.filter_id);
    let newest = "";
    for (let i = 0; i < MAX_FILTERS_PER_USER + 10; i++) {
      newest = String((await call("POST", path, alice, { room: { timeline: { limit: i } } })).json.filter_id);
    }
    assert.equal(
      count("SELECT COUNT(*) AS n FROM filters WHERE user_id = ?", alice.userId),
      MAX_FILTERS_PER_USER,
    );
    assert.equal((await call("GET", `${path}/${newest}`, alice)).status, 200);
    assert.equal((await call("GET", `${path}/${same.json.filter_id}`, alice)).status, 404);
  });
});

describe("/sync long-polls held open", () => {
  it("a device holds at most MAX_LONG_POLLS_PER_DEVICE; others and a closed one's successor go on", async () => {
    const alice = user("alice");
    const other = hs.createSession(alice.userId, "OTHER", null, "");
    const since = String((await call("GET", "/sync", alice)).json.next_batch);
    const path = `/sync?timeout=600000&since=${encodeURIComponent(since)}`;
    const aborts: AbortController[] = [];
    const polls: Promise<{ status: number }>[] = [];
    const poll = (session: Session) => {
      const abort = new AbortController();
      aborts.push(abort);
      polls.push(call("GET", path, session, undefined, abort.signal));
      return polls.at(-1)!;
    };
    for (let i = 0; i < MAX_LONG_POLLS_PER_DEVICE; i++) void poll(alice);
    // Refused at once; were it not, it would wait: aborted after the refusal had its turn.
    const overAbort = new AbortController();
    const pending = call("GET", path, alice, undefined, overAbort.signal);
    await new Promise((resolve) => setImmediate(resolve));
    overAbort.abort();
    const over = await pending;
    assert.deepEqual([over.status, over.json.errcode], [429, "M_LIMIT_EXCEEDED"]);
    void poll(other); // another device is not held back
    aborts[0]!.abort();
    assert.equal((await polls[0]!).status, 200);
    void poll(alice); // the closed one made room
    for (const a of aborts) a.abort();
    for (const p of polls) assert.equal((await p).status, 200);
  });
});

describe("what a user makes others or the server keep", () => {
  it("account data of one user stays within MAX_ACCOUNT_DATA_BYTES_PER_USER, tags included", async () => {
    const alice = user("alice");
    const me = encodeURIComponent(alice.userId);
    const chunk = "x".repeat(MAX_ACCOUNT_DATA_BYTES_PER_USER / 8);
    for (let i = 0; i < 7; i++) {
      const r = await call("PUT", `/user/${me}/account_data/m.big${i}`, alice, { chunk });
      assert.equal(r.status, 200, JSON.stringify(r.json));
    }
    const over = await call("PUT", `/user/${me}/account_data/m.big7`, alice, { chunk, more: chunk });
    assert.deepEqual([over.status, over.json.errcode], [413, "M_TOO_LARGE"]);
    const tag = await call("PUT", `/user/${me}/rooms/!r%3Alocalhost/tags/t`, alice, { chunk, more: chunk });
    assert.deepEqual([tag.status, tag.json.errcode], [413, "M_TOO_LARGE"]);
    // Replacing an entry counts its new size only.
    assert.equal((await call("PUT", `/user/${me}/account_data/m.big0`, alice, { chunk })).status, 200);
    assert.equal((await call("PUT", `/user/${me}/account_data/m.small`, alice, { a: 1 })).status, 200);
    assert.equal((await call("GET", `/user/${me}/account_data/m.big7`, alice)).status, 404);
  });

  it('a read receipt\'s thread_id is "main" or an event of the room, not any string', async () => {
    const alice = user("alice");
    const room = String((await call("POST", "/createRoom", alice, {})).json.room_id);
    const r = encodeURIComponent(room);
    const sent = await call("PUT", `/rooms/${r}/send/m.room.message/m1`, alice, {
      msgtype: "m.text",
      body: "hi",
    });
    const ev = encodeURIComponent(String(sent.json.event_id));
    const receipt = (thread_id?: string) =>
      call("POST", `/rooms/${r}/receipt/m.read/${ev}`, alice, thread_id === undefined ? {} : { thread_id });
    for (const ok of [undefined, "main", String(sent.json.event_id)])
      assert.equal((await receipt(ok)).status, 200);
    for (const bad of ["x".repeat(100_000), "$unknown", ""]) {
      const res = await receipt(bad);
      assert.deepEqual([res.status, res.json.errcode], [400, "M_INVALID_PARAM"]);
    }
    assert.equal(
      (
        hs.db.prepare("SELECT COUNT(*) AS n FROM receipts WHERE user_id = ?").get(alice.userId) as {
          n: number;
        }
      ).n,
      3,
    );
  });
});

describe("media a user stores", () => {
  it("stays within the per-user bound (MAX_MEDIA_BYTES_PER_USER unless set lower); others unaffected", async () => {
    hs.close();
    start({ maxMediaBytesPerUser: 1000 });
    const alice = user("alice");
    const bob = user("bob");
    const upload = (who: Session, n: number) =>
      call("POST", "/_matrix/media/v3/upload", who, Buffer.alloc(n));
    assert.equal((await upload(alice, 600)).status, 200);
    const over = await upload(alice, 401);
    assert.deepEqual([over.status, over.json.errcode], [413, "M_TOO_LARGE"]);
    // The asynchronous upload is held to it too.
    const created = await call("POST", "/_matrix/media/v1/create", alice);
    const mediaId = String(created.json.content_uri).split("/").at(-1)!;
    const late = await call("PUT", `/_matrix/media/v3/upload/localhost/${mediaId}`, alice, Buffer.alloc(401));
    assert.deepEqual([late.status, late.json.errcode], [413, "M_TOO_LARGE"]);
    assert.equal((await upload(alice, 400)).status, 200);
    assert.equal((await upload(bob, 1000)).status, 200);
    assert.equal(hs.misc.mediaBytesOf(alice.userId), 1000);
  });
});

describe("room aliases", () => {
  it(`at most MAX_ALIAS_BYTES each, MAX_ALIASES_PER_USER per user; deleting one makes room`, async () => {
    const alice = user("alice");
    const room = String((await call("POST", "/createRoom", alice, {})).json.room_id);
    const put = (alias: string) =>
      call("PUT", `/directory/room/${encodeURIComponent(alias)}`, alice, { room_id: room });
    const name = (bytes: number) => "a".repeat(bytes - "#:localhost".length);
    const tooLong = await put(`#${name(MAX_ALIAS_BYTES + 1)}:localhost`);
    assert.deepEqual([tooLong.status, tooLong.json.errcode], [400, "M_INVALID_PARAM"]);
    const created = await call("POST", "/createRoom", alice, { room_alias_name: name(MAX_ALIAS_BYTES + 1) });
    assert.deepEqual([created.status, created.json.errcode], [400, "M_INVALID_PARAM"]);
    assert.equal((await put(`#${name(MAX_ALIAS_BYTES)}:localhost`)).status, 200);
    hs.tx(() => {
      for (let i = 1; i < MAX_ALIASES_PER_USER; i++)
        hs.rooms.putAlias(`#fill${i}:localhost`, room, alice.userId);
    });
    const over = await put("#one-more:localhost");
    assert.deepEqual([over.status, over.json.errcode], [403, "M_FORBIDDEN"]);
    const viaCreate = await call("POST", "/createRoom", alice, { room_alias_name: "one-more" });
    assert.deepEqual([viaCreate.status, viaCreate.json.errcode], [403, "M_FORBIDDEN"]);
    assert.equal(
      (await call("DELETE", `/directory/room/${encodeURIComponent("#fill1:localhost")}`, alice)).status,
      200,
    );
    assert.equal((await put("#one-more:localhost")).status, 200);
  });
});

describe("key backup", () => {
  const algorithm = "m.megolm_backup.v1.curve25519-aes-sha2";
  const key = (data: unknown) => ({
    first_message_index: 0,
    forwarded_count: 0,
    is_verified: false,
    session_data: data,
  });

  it("auth_data and session_data past their bounds are 413 M_TOO_LARGE, nothing stored", async () => {
    const alice = user("alice");
    const big = { x: "y".repeat(MAX_BACKUP_AUTH_DATA_BYTES) };
    const created = await call("POST", "/room_keys/version", alice, { algorithm, auth_data: big });
    assert.deepEqual([created.status, created.json.errcode], [413, "M_TOO_LARGE"]);
    const version = String(
      (await call("POST", "/room_keys/version", alice, { algorithm, auth_data: {} })).json.version,
    );
    const update = await call("PUT", `/room_keys/version/${version}`, alice, { algorithm, auth_data: big });
    assert.deepEqual([update.status, update.json.errcode], [413, "M_TOO_LARGE"]);
    const upload = await call("PUT", `/room_keys/keys?version=${version}`, alice, {
      rooms: {
        "!r:localhost": {
          sessions: { a: key({}), b: key({ x: "y".repeat(MAX_BACKUP_SESSION_DATA_BYTES) }) },
        },
      },
    });
    assert.deepEqual([upload.status, upload.json.errcode], [413, "M_TOO_LARGE"]);
    assert.equal(hs.misc.countBackupKeys(alice.userId, Number(version)), 0);
  });

  it("a version holds at most MAX_BACKUP_KEYS_PER_VERSION keys", async () => {
    const alice = user("alice");
    const version = String(
      (await call("POST", "/room_keys/version", alice, { algorithm, auth_data: {} })).json.version,
    );
    hs.db
      .prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
         INSERT INTO backup_keys SELECT ?, ?, '!r:localhost', 'fill' || i, 0, 0, 0, '{}' FROM n`,
      )
      .run(MAX_BACKUP_KEYS_PER_VERSION - 1, alice.userId, Number(version));
    const put = (sessions: Record<string, unknown>) =>
      call("PUT", `/room_keys/keys/${encodeURIComponent("!r:localhost")}?version=${version}`, alice, {
        sessions,
      });
    const over = await put({ a: key({}), b: key({}) });
    assert.deepEqual([over.status, over.json.errcode], [403, "M_FORBIDDEN"]);
    assert.equal((await put({ a: key({}) })).status, 200);
    assert.equal((await put({ fill1: key({ replaced: true }) })).status, 200, "replacing one adds none");
    assert.equal(hs.misc.countBackupKeys(alice.userId, Number(version)), MAX_BACKUP_KEYS_PER_VERSION);
  });

  it("a user keeps at most MAX_BACKUP_VERSIONS_PER_USER versions, the newest", async () => {
    const alice = user("alice");
    const first = String(
      (await call("POST", "/room_keys/version", alice, { algorithm, auth_data: {} })).json.version,
    );
    await call("PUT", `/room_keys/keys?version=${first}`, alice, {
      rooms: { "!r:localhost": { sessions: { a: key({}) } } },
    });
    for (let i = 0; i < MAX_BACKUP_VERSIONS_PER_USER; i++) {
      assert.equal(
        (await call("POST", "/room_keys/version", alice, { algorithm, auth_data: {} })).status,
        200,
      );
    }
    const count = (sql: string) => (hs.db.prepare(sql).get(alice.userId) as { n: number }).n;
    assert.equal(
      count("SELECT COUNT(*) AS n FROM backup_versions WHERE user_id = ?"),
      MAX_BACKUP_VERSIONS_PER_USER,
    );
    assert.equal(count("SELECT COUNT(*) AS n FROM backup_keys WHERE user_id = ?"), 0);
    assert.equal((await call("GET", `/room_keys/version/${first}`, alice)).status, 404);
    assert.equal(
      (await call("GET", "/room_keys/version", alice)).json.version,
      String(MAX_BACKUP_VERSIONS_PER_USER + 1),
    );
  });
});

describe("size of stored keys", () => {
  /** Device keys for `session`'s device, signed by a fresh Ed25519 key, with `extra` fields. */
  const signedDeviceKeys = (session: Session, extra: Record<string, unknown>) => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const pub = publicKey
      .export({ format: "der", type: "spki" })
      .subarray(12)
      .toString("base64")
      .replace(/=+$/, "");
    const keys: Record<string, unknown> = {
      user_id: session.userId,
      device_id: session.deviceId,
      algorithms: ["m.olm.v1.curve25519-aes-sha2"],
      keys: { [`ed25519:${session.deviceId}`]: pub, [`curve25519:${session.deviceId}`]: "c" },
      ...extra,
    };
    const sig = sign(null, Buffer.from(canonicalJson(keys)), privateKey)
      .toString("base64")
      .replace(/=+$/, "");
    return { ...keys, signatures: { [session.userId]: { [`ed25519:${session.deviceId}`]: sig } } };
  };

  it("keys past MAX_ONE_TIME_KEY_BYTES or MAX_DEVICE_KEYS_BYTES are 413 M_TOO_LARGE; nothing of the upload is stored", async () => {
    const alice = user("alice");
    const big = (n: number) => ({ key: "k", pad: "x".repeat(n) });
    for (const body of [
      { one_time_keys: { "signed_curve25519:A": big(MAX_ONE_TIME_KEY_BYTES) } },
      { fallback_keys: { "signed_curve25519:F": big(MAX_ONE_TIME_KEY_BYTES) } },
      { device_keys: signedDeviceKeys(alice, { pad: "x".repeat(MAX_DEVICE_KEYS_BYTES) }) },
      // Device keys within bounds, one-time keys past them: the device keys are not kept either.
      {
        device_keys: signedDeviceKeys(alice, {}),
        one_time_keys: { "signed_curve25519:B": big(MAX_ONE_TIME_KEY_BYTES) },
      },
    ]) {
      const r = await call("POST", "/keys/upload", alice, body);
      assert.deepEqual([r.status, r.json.errcode], [413, "M_TOO_LARGE"], Object.keys(body).join());
    }
    assert.equal(hs.accounts.getDevice(alice.userId, alice.deviceId)?.device_keys, null);
    assert.deepEqual(hs.keys.storedKeyCounts(alice.userId, alice.deviceId), { oneTime: 0, fallback: 0 });
    const ok = await call("POST", "/keys/upload", alice, {
      device_keys: signedDeviceKeys(alice, {}),
      one_time_keys: { "signed_curve25519:A": big(100) },
    });
    assert.equal(ok.status, 200);
  });
});

describe("public room directory", () => {
  it("pages of at most MAX_PUBLIC_ROOMS_PAGE rooms, with since tokens to page on", async () => {
    const alice = user("alice");
    for (let i = 0; i <= MAX_PUBLIC_ROOMS_PAGE; i++) {
      assert.equal((await call("POST", "/createRoom", alice, { visibility: "public" })).status, 200);
    }
    const first = await call("GET", "/publicRooms", undefined);
    assert.equal((first.json.chunk as unknown[]).length, MAX_PUBLIC_ROOMS_PAGE);
    assert.equal(first.json.total_room_count_estimate, MAX_PUBLIC_ROOMS_PAGE + 1);
    const next = await call("GET", `/publicRooms?since=${String(first.json.next_batch)}`, undefined);
    assert.equal((next.json.chunk as unknown[]).length, 1);
    assert.equal(next.json.next_batch, undefined);
    const posted = await call("POST", "/publicRooms", alice, { limit: 30 });
    assert.equal((posted.json.chunk as unknown[]).length, 30);
    for (const q of ["limit=0", "limit=-1", "limit=abc", "since=x", "since=p-1"]) {
      const r = await call("GET", `/publicRooms?${q}`, undefined);
      assert.deepEqual([r.status, r.json.errcode], [400, "M_INVALID_PARAM"], q);
    }
  });
});

describe("rate limiter", () => {
  it("keeps at most MAX_RATE_LIMIT_BUCKETS buckets; a limited recent key stays limited", () => {
    const limiter = new RateLimiter({ perSecond: 1, burst: 0 });
    for (let i = 0; i < MAX_RATE_LIMIT_BUCKETS + 5000; i++) assert.equal(limiter.take(`k${i}`, 0), 0);
    assert.ok(limiter.size <= MAX_RATE_LIMIT_BUCKETS);
    const last = `k${MAX_RATE_LIMIT_BUCKETS + 4999}`;
    assert.ok(limiter.take(last, 0) > 0, "the newest key is still limited");
    // Refilled buckets go first when room is needed.
    for (let i = 0; i < MAX_RATE_LIMIT_BUCKETS; i++) limiter.take(`late${i}`, 60_000 + i);
    assert.ok(limiter.size <= MAX_RATE_LIMIT_BUCKETS);
    assert.ok(limiter.take(`late${MAX_RATE_LIMIT_BUCKETS - 1}`, 60_000 + MAX_RATE_LIMIT_BUCKETS) > 0);
  });
});
