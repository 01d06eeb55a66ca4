// What one client can make the devserver keep is bounded by a named constant: the routes are called
// in process (no HTTP), and queues are filled through the store where reaching a bound by requests
// alone would take too long.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { MatrixError } from "./errors.ts";
import { Homeserver, type Session } from "./homeserver.ts";
import { buildRouter } from "./routes/index.ts";
import { MAX_FALLBACK_KEYS_PER_DEVICE, MAX_ONE_TIME_KEYS_PER_DEVICE } from "./routes/keys.ts";
import { MAX_TO_DEVICE_QUEUE_PER_DEVICE } from "./routes/to-device.ts";
import { Uia } from "./uia.ts";

let hs: Homeserver;
let call: (
  method: string,
  path: string,
  session: Session | undefined,
  body?: unknown,
) => Promise<{ status: number; json: { errcode?: string; [k: string]: unknown } }>;

beforeEach(() => {
  hs = new Homeserver({ serverName: "localhost", dbPath: ":memory:" });
  const router = buildRouter({ hs, uia: new Uia(hs), baseUrl: () => "http://localhost" });
  call = async (method, path, session, body) => {
    const url = new URL(`/_matrix/client/v3${path}`, "http://localhost");
    const m = router.match(method, url.pathname);
    try {
      const r = await m.handler({
        method,
        path: url.pathname,
        params: m.params,
        query: url.searchParams,
        headers: {},
        rawBody: Buffer.from(body === undefined ? "" : JSON.stringify(body)),
        ip: "",
        auth: session && hs.authenticate(session.token),
        signal: new AbortController().signal,
      });
      return { status: r.status ?? 200, json: ("json" in r ? r.json : {}) as { errcode?: string } };
    } catch (e) {
      if (e instanceof MatrixError) return { status: e.status, json: e.toBody() };
      throw e;
    }
  };
});
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
