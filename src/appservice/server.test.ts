import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { holdsAtMostConnections, rawExchange } from "../client/test-support/sockets.ts";
import { MAX_TXN_EVENTS } from "../wire/appservice.ts";
import { AppserviceError } from "./errors.ts";
import {
  type AppserviceHandlers,
  checkHsToken,
  errorResponse,
  handleRequest,
  listenAppservice,
  MAX_APPSERVICE_CONNECTIONS,
  MAX_TXN_BODY_BYTES,
} from "./server.ts";
import type { Transaction } from "./transaction.ts";

const HS = "hs-token-secret";
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function recorder(): { handlers: AppserviceHandlers; got: [string, Transaction][] } {
  const got: [string, Transaction][] = [];
  return {
    got,
    handlers: {
      transaction: async (id, txn) => {
        got.push([id, txn]);
      },
    },
  };
}

async function call(
  method: string,
  url: string,
  auth: string | undefined,
  body: string | Uint8Array,
  handlers = recorder().handlers,
): Promise<{ status: number; body: unknown }> {
  try {
    return await handleRequest(method, url, auth, async () => Buffer.from(body), HS, handlers);
  } catch (e) {
    return errorResponse(e);
  }
}

const errcode = (r: { body: unknown }) => (r.body as { errcode?: string }).errcode;

describe("appservice transactions endpoint", () => {
  it("refuses a missing or wrong hs_token, before reading the body", async () => {
    const r = recorder();
    const missing = await call(
      "PUT",
      "/_matrix/app/v1/transactions/1",
      undefined,
      '{"events":[]}',
      r.handlers,
    );
    assert.equal(missing.status, 401);
    assert.equal(errcode(missing), "M_UNAUTHORIZED");
    for (const auth of [`Bearer ${HS}x`, `Bearer ${HS.slice(1)}`, HS, "Bearer ", "Basic abc"]) {
      const wrong = await call("PUT", "/_matrix/app/v1/transactions/1", auth, '{"events":[]}', r.handlers);
      assert.equal(wrong.status, 403, auth);
      assert.equal(errcode(wrong), "M_FORBIDDEN");
    }
    assert.equal(r.got.length, 0);
    assert.throws(
      () => checkHsToken("Bearer as-token", HS),
      (e: unknown) => e instanceof AppserviceError && e.code === "BAD_TOKEN",
    );
    assert.doesNotThrow(() => checkHsToken(`Bearer ${HS}`, HS));
  });

  it("takes the Bearer scheme in any case (RFC 7235), still checking the token", async () => {
    for (const scheme of ["bearer", "BEARER", "bEaReR"]) {
      assert.doesNotThrow(() => checkHsToken(`${scheme} ${HS}`, HS), scheme);
      assert.throws(
        () => checkHsToken(`${scheme} ${HS}x`, HS),
        (e: unknown) => e instanceof AppserviceError && e.code === "BAD_TOKEN",
      );
    }
    const r = recorder();
    const res = await call(
      "PUT",
      "/_matrix/app/v1/transactions/1",
      `bearer ${HS}`,
      '{"events":[]}',
      r.handlers,
    );
    assert.equal(res.status, 200);
    assert.equal(r.got.length, 1);
  });

  it("hands a well-formed transaction on, normalising the unstable field names", async () => {
    const r = recorder();
    const body = {
      events: [
        {
          event_id: "$1",
          type: "m.room.message",
          sender: "@a:x",
          origin_server_ts: 1,
          content: {},
          room_id: "!r:x",
        },
      ],
      "de.sorunome.msc2409.ephemeral": [{ type: "m.receipt", room_id: "!r:x", content: {} }],
      "de.sorunome.msc2409.to_device": [
        { type: "m.room.encrypted", sender: "@a:x", content: {}, to_user_id: "@b:x", to_device_id: "D" },
        { type: "m.room.encrypted", sender: "@a:x", content: {} },
      ],
      "org.matrix.msc3202.device_lists": { changed: ["@a:x"] },
      "org.matrix.msc3202.device_one_time_key_counts": { "@b:x": { D: { signed_curve25519: 3 } } },
      "org.matrix.msc3202.device_unused_fallback_key_types": { "@b:x": { D: ["signed_curve25519"] } },
    };
    const res = await call(
      "PUT",
      "/_matrix/app/v1/transactions/t%201",
      `Bearer ${HS}`,
      JSON.stringify(body),
      r.handlers,
    );
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    const [id, txn] = r.got[0]!;
    assert.equal(id, "t 1");
    assert.equal(txn.events.length, 1);
    assert.equal(txn.ephemeral.length, 1);
    // The message without a recipient is dropped, not the transaction.
    assert.equal(txn.toDevice.length, 1);
    assert.deepEqual(txn.deviceLists, { changed: ["@a:x"], left: [] });
    assert.equal(txn.oneTimeKeyCounts["@b:x"]?.D?.signed_curve25519, 3);
    assert.deepEqual(txn.unusedFallbackKeyTypes["@b:x"]?.D, ["signed_curve25519"]);
  });

  it("answers bad bodies with typed errors", async () => {
    const cases: [string | Uint8Array, number, string][] = [
      ["not json", 400, "M_NOT_JSON"],
      [new Uint8Array([0x7b, 0xff, 0x7d]), 400, "M_NOT_JSON"],
      ["[]", 400, "M_BAD_JSON"],
      ["{}", 400, "M_BAD_JSON"],
      ['{"events":{}}', 400, "M_BAD_JSON"],
      ['{"events":[],"org.matrix.msc3202.device_lists":{"changed":"@a:x"}}', 400, "M_BAD_JSON"],
      // A malformed entry inside is dropped (transaction.test.ts); a map that is no map is refused.
      ['{"events":[],"org.matrix.msc3202.device_one_time_keys_count":[]}', 400, "M_BAD_JSON"],
      [JSON.stringify({ events: new Array(MAX_TXN_EVENTS + 1).fill(0) }), 400, "M_BAD_JSON"],
    ];
    for (const [body, status, code] of cases) {
      const res = await call("PUT", "/_matrix/app/v1/transactions/1", `Bearer ${HS}`, body);
      assert.equal(res.status, status, String(body).slice(0, 40));
      assert.equal(errcode(res), code);
    }
    const longId = await call(
      "PUT",
      `/_matrix/app/v1/transactions/${"x".repeat(300)}`,
      `Bearer ${HS}`,
      '{"events":[]}',
    );
    assert.equal(longId.status, 400);
  });

  it("never throws anything but typed errors, whatever the body", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.json(),
          fc.string(),
          fc.anything().map((v) => JSON.stringify({ events: [v] }) ?? ""),
        ),
        async (text) => {
          try {
            await handleRequest(
              "PUT",
              "/_matrix/app/v1/transactions/p",
              `Bearer ${HS}`,
              async () => Buffer.from(text),
              HS,
              recorder().handlers,
            );
          } catch (e) {
            assert.ok(e instanceof AppserviceError, String(e));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("answers user and alias queries as unknown by default, ping, and 404 elsewhere", async () => {
    const auth = `Bearer ${HS}`;
    assert.equal((await call("GET", "/_matrix/app/v1/users/%40a%3Ax", auth, "")).status, 404);
    assert.equal((await call("GET", "/_matrix/app/v1/rooms/%23a%3Ax", auth, "")).status, 404);
    assert.equal((await call("POST", "/_matrix/app/v1/ping", auth, "{}")).status, 200);
    assert.equal(errcode(await call("GET", "/_matrix/app/v1/nope", auth, "")), "M_UNRECOGNIZED");
    const yes = await call("GET", "/_matrix/app/v1/users/%40a%3Ax", auth, "", {
      transaction: async () => {},
      queryUser: async (u) => u === "@a:x",
    });
    assert.equal(yes.status, 200);
  });

  it("ping: hands the transaction ID on; a body that is not a ping's is a 400", async () => {
    const auth = `Bearer ${HS}`;
    const pings: (string | undefined)[] = [];
    const handlers: AppserviceHandlers = { transaction: async () => {}, ping: (id) => void pings.push(id) };
    const ping = (body: string, a = auth) => call("POST", "/_matrix/app/v1/ping", a, body, handlers);
    assert.equal((await ping('{"transaction_id":"mine_1"}')).status, 200);
    assert.equal((await ping("{}")).status, 200);
    assert.equal((await ping("")).status, 200, "no body: a ping without an ID");
    assert.deepEqual(pings, ["mine_1", undefined, undefined]);
    assert.equal(errcode(await ping("[]")), "M_BAD_JSON");
    assert.equal(errcode(await ping('{"transaction_id":7}')), "M_BAD_JSON");
    assert.equal(errcode(await ping("{")), "M_NOT_JSON");
    assert.equal(errcode(await ping('{"transaction_id":"x"}', "Bearer wrong")), "M_FORBIDDEN");
    assert.equal(pings.length, 3, "refused pings are not handed on");
  });

  it("keeps running over HTTP after bad requests, and a handler failure answers 500 (the homeserver retries)", async () => {
    let fail = true;
    const listener = await listenAppservice(
      { port: 0, hsToken: HS, logger: quiet },
      {
        transaction: async () => {
          if (fail) throw new Error("boom");
        },
      },
    );
    try {
      const put = (body: string, auth = `Bearer ${HS}`) =>
        fetch(`${listener.url}/_matrix/app/v1/transactions/1`, {
          method: "PUT",
          headers: { Authorization: auth },
          body,
        });
      assert.equal((await put("{", `Bearer ${HS}`)).status, 400);
      assert.equal((await put('{"events":[]}', "Bearer wrong")).status, 403);
      const failed = await put('{"events":[]}');
      assert.equal(failed.status, 500);
      assert.equal(((await failed.json()) as { errcode: string }).errcode, "M_UNKNOWN");
      fail = false;
      assert.equal((await put('{"events":[]}')).status, 200);
    } finally {
      await listener.close();
    }
  });
});

describe("appservice endpoint, hostile requests", () => {
  it("answers a malformed request target with a 4xx, not a 500", async () => {
    for (const url of ["//[", "http://[::1", "//a:99999/_matrix/app/v1/ping"]) {
      const res = await call("POST", url, `Bearer ${HS}`, "{}");
      assert.equal(res.status, 400, url);
      assert.equal(errcode(res), "M_UNRECOGNIZED");
    }
  });

  it("answers 413 at once to a body announced over MAX_TXN_BODY_BYTES, without reading it", async () => {
    const r = recorder();
    const listener = await listenAppservice({ port: 0, hsToken: HS, logger: quiet }, r.handlers);
    try {
      const out = await rawExchange(
        listener.url,
        `PUT /_matrix/app/v1/transactions/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${HS}\r\n` +
          `Content-Length: ${MAX_TXN_BODY_BYTES + 1}\r\n\r\n`,
      );
      assert.match(out, /^HTTP\/1\.1 413 /);
      assert.match(out, /"M_TOO_LARGE"/);
      assert.equal(r.got.length, 0);
    } finally {
      await listener.close();
    }
  });

  it("closes the connection after refusing a token, without waiting for the body", async () => {
    const listener = await listenAppservice({ port: 0, hsToken: HS, logger: quiet }, recorder().handlers);
    try {
      for (const auth of ["", `Authorization: Bearer wrong\r\n`]) {
        const out = await rawExchange(
          listener.url,
          `PUT /_matrix/app/v1/transactions/1 HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 1000000\r\n\r\n`,
        );
        assert.match(out, auth === "" ? /^HTTP\/1\.1 401 / : /^HTTP\/1\.1 403 /);
        assert.match(out, /\r\nConnection: close\r\n/i, "not kept open for the unread body");
      }
    } finally {
      await listener.close();
    }
  });

  it("holds at most MAX_APPSERVICE_CONNECTIONS connections: one more is dropped at once, and it serves again after", async () => {
    const listener = await listenAppservice({ port: 0, hsToken: HS, logger: quiet }, recorder().handlers);
    try {
      const ping =
        `POST /_matrix/app/v1/ping HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${HS}\r\n` +
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
      await holdsAtMostConnections(listener.url, MAX_APPSERVICE_CONNECTIONS, ping, /^HTTP\/1\.1 200 /);
    } finally {
      await listener.close();
    }
  });
});
