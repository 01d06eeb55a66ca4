// The appservice ping (Matrix 1.7): `Appservice.pingHomeserver()` asks the devserver to call the
// appservice's `/_matrix/app/v1/ping` with the hs_token and the transaction ID, and reports how it
// went, and whether the call carrying its transaction ID reached its own listener.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { MatrixError } from "../client/errors.ts";
import { type DevServer, startDevServer } from "../devserver/index.ts";
import type { Registration } from "../wire/appservice.ts";
import { Appservice } from "./appservice.ts";
import { type AppserviceListener, listenAppservice } from "./server.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

const reg = (id: string, url: string | null): Registration => ({
  id,
  url,
  as_token: `as_token_${id}`,
  hs_token: `hs_token_${id}`,
  sender_localpart: `${id}bot`,
  namespaces: { users: [{ exclusive: true, regex: `@${id}_.*` }] },
});

describe("Appservice.pingHomeserver against the devserver", () => {
  let server: DevServer;
  let listener: AppserviceListener;
  let wrongToken: AppserviceListener;
  const seen: { url: string | undefined; auth: string | undefined; body: string }[] = [];
  const recorder = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      // Only the pings: transactions the devserver may push here are not what this looks at.
      if (req.method === "POST")
        seen.push({ url: req.url, auth: req.headers.authorization, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
  });
  let closedUrl = "";
  /** The "fwd" appservice's URL passes requests on to this one (an Appservice's listener, once up). */
  let forwardTo = "";
  const forwarder = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      if (req.headers.authorization) headers.authorization = req.headers.authorization;
      fetch(`${forwardTo}${req.url}`, {
        method: req.method ?? "GET",
        headers,
        ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
      }).then(
        async (r) => res.writeHead(r.status, { "Content-Type": "application/json" }).end(await r.text()),
        () => res.writeHead(502).end(),
      );
    });
  });

  before(async () => {
    listener = await listenAppservice(
      { port: 0, hsToken: "hs_token_ok", logger: quiet },
      { transaction: async () => {} },
    );
    wrongToken = await listenAppservice(
      { port: 0, hsToken: "not_the_hs_token", logger: quiet },
      { transaction: async () => {} },
    );
    await new Promise<void>((resolve) => recorder.listen(0, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => forwarder.listen(0, "127.0.0.1", resolve));
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, "127.0.0.1", resolve));
    closedUrl = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    server = await startDevServer({
      port: 0,
      memory: true,
      appservices: [
        reg("ok", listener.url),
        reg("rec", `http://127.0.0.1:${(recorder.address() as AddressInfo).port}/`),
        reg("bad", wrongToken.url),
        reg("nourl", null),
        reg("gone", closedUrl),
        reg("fwd", `http://127.0.0.1:${(forwarder.address() as AddressInfo).port}`),
      ],
    });
  });
  after(async () => {
    await server.close();
    await listener.close();
    await wrongToken.close();
    await new Promise<void>((resolve) => recorder.close(() => resolve()));
    await new Promise<void>((resolve) => forwarder.close(() => resolve()));
  });

  const appservice = (registration: Registration) =>
    new Appservice({
      registration,
      homeserverUrl: server.baseUrl,
      encryption: false,
      clientOptions: { fillTimelineGaps: false },
    });
  const errcodeOf = async (p: Promise<unknown>): Promise<[string, number]> => {
    try {
      await p;
    } catch (e) {
      if (e instanceof MatrixError) return [e.errcode, e.httpStatus];
      throw e;
    }
    assert.fail("the ping succeeded");
  };

  it("reaches the appservice's endpoint and returns the duration", async () => {
    const { durationMs, relayed } = await appservice(reg("ok", listener.url)).pingHomeserver();
    assert.ok(Number.isInteger(durationMs) && durationMs >= 0, String(durationMs));
    assert.equal(relayed, false, "served by a listener of no Appservice's");
  });

  it("calls /_matrix/app/v1/ping with the hs_token and the transaction ID (a fresh one when none is given)", async () => {
    seen.length = 0;
    assert.equal((await appservice(reg("rec", null)).pingHomeserver("txn-42")).transactionId, "txn-42");
    const fresh = await appservice(reg("rec", null)).pingHomeserver();
    const other = await appservice(reg("rec", null)).pingHomeserver();
    assert.match(fresh.transactionId, /^keyroom_ping_[0-9a-f]{24}$/);
    assert.notEqual(fresh.transactionId, other.transactionId, "each ping told apart");
    assert.deepEqual(seen, [
      { url: "/_matrix/app/v1/ping", auth: "Bearer hs_token_rec", body: '{"transaction_id":"txn-42"}' },
      ...[fresh, other].map((p) => ({
        url: "/_matrix/app/v1/ping",
        auth: "Bearer hs_token_rec",
        body: JSON.stringify({ transaction_id: p.transactionId }),
      })),
    ]);
  });

  it("tells whether its own listener received the homeserver's call for its ping", async () => {
    const pinged: (string | undefined)[] = [];
    const running = new Appservice({
      registration: reg("fwd", null),
      homeserverUrl: server.baseUrl,
      encryption: false,
      clientOptions: { fillTimelineGaps: false },
      onPing: (id) => void pinged.push(id),
    });
    await running.start();
    forwardTo = await running.listen({ port: 0 });
    try {
      const own = await running.pingHomeserver();
      assert.equal(own.relayed, true);
      assert.deepEqual(pinged, [own.transactionId]);
      // Another process with the same registration (an old instance, say): the homeserver's call
      // reaches the running one, so this one learns that its URL leads elsewhere.
      const elsewhere = await appservice(reg("fwd", null)).pingHomeserver("from-elsewhere");
      assert.equal(elsewhere.relayed, false);
      assert.deepEqual(pinged, [own.transactionId, "from-elsewhere"]);
      // One of its pings whose ID is under way already is refused (the answer would be ambiguous).
      const [first, second] = await Promise.allSettled([
        running.pingHomeserver("same"),
        running.pingHomeserver("same"),
      ]);
      assert.equal(first.status === "fulfilled" && first.value.relayed, true);
      assert.equal(
        second.status === "rejected" && (second.reason as { code?: string }).code,
        "PING_UNDER_WAY",
      );
    } finally {
      await running.close();
    }
  });

  it("reports an error answer, no URL, and no connection with the spec's codes", async () => {
    assert.deepEqual(await errcodeOf(appservice(reg("bad", null)).pingHomeserver()), ["M_BAD_STATUS", 502]);
    assert.deepEqual(await errcodeOf(appservice(reg("nourl", null)).pingHomeserver()), [
      "M_URL_NOT_SET",
      400,
    ]);
    assert.deepEqual(await errcodeOf(appservice(reg("gone", null)).pingHomeserver()), [
      "M_CONNECTION_FAILED",
      502,
    ]);
  });

  it("passes on the status and body of an error answer", async () => {
    const res = await fetch(`${server.baseUrl}/_matrix/client/v1/appservice/bad/ping`, {
      method: "POST",
      headers: { Authorization: "Bearer as_token_bad" },
      body: "{}",
    });
    assert.equal(res.status, 502);
    const body = (await res.json()) as { errcode: string; status: number; body: string };
    assert.equal(body.errcode, "M_BAD_STATUS");
    assert.equal(body.status, 403);
    assert.match(body.body, /M_FORBIDDEN/);
  });

  it("refuses another appservice's ID and a user's token with 403", async () => {
    // The "ok" appservice's token, naming "rec" in the path.
    const asOk = { ...reg("rec", null), as_token: "as_token_ok" };
    assert.deepEqual(await errcodeOf(appservice(asOk).pingHomeserver()), ["M_FORBIDDEN", 403]);
    const user = (await (
      await fetch(`${server.baseUrl}/_matrix/client/v3/register`, {
        method: "POST",
        body: JSON.stringify({
          username: "alice",
          password: "pw-alice-1234",
          auth: { type: "m.login.dummy" },
        }),
      })
    ).json()) as { access_token: string };
    const res = await fetch(`${server.baseUrl}/_matrix/client/v1/appservice/ok/ping`, {
      method: "POST",
      headers: { Authorization: `Bearer ${user.access_token}` },
      body: "{}",
    });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { errcode: string }).errcode, "M_FORBIDDEN");
  });
});
