import assert from "node:assert/strict";
import { once } from "node:events";
import { Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it, mock } from "node:test";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { withinBudget } from "../../../test/support/budget.ts";
import * as z from "../../wire/zod.ts";
import { MalformedResponseError, MatrixError, NetworkError } from "../errors.ts";
import { HttpClient, path } from "../http.ts";
import { KEEP_ALIVE_IDLE_MS, nodeHttpTransport } from "./node-http.ts";

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

/** A local HTTP server whose answer each test sets; counts the connections it accepted. */
class TestServer {
  handler: Handler = (_req, _body, res) => res.end("{}");
  connections = 0;
  readonly seen: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[] = [];
  readonly server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      const body = Buffer.concat(parts).toString("utf8");
      this.seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      this.handler(req, body, res);
    });
  });
  constructor() {
    this.server.on("connection", () => this.connections++);
  }
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
}

const ok = z.object({ event_id: z.string() });
const anything = z.object({});

describe("node:http transport", () => {
  const srv = new TestServer();
  // Each test gets its own agent, so connection counts do not depend on the other tests.
  let agent = new Agent({ keepAlive: true });
  const client = (token = "secret-token") =>
    new HttpClient({
      baseUrl: srv.url,
      accessToken: () => token,
      transport: nodeHttpTransport({ httpAgent: agent }),
    });
  const fresh = () => {
    agent.destroy();
    agent = new Agent({ keepAlive: true });
    srv.seen.length = 0;
    srv.connections = 0;
  };

  before(async () => {
    srv.server.listen(0, "127.0.0.1");
    await once(srv.server, "listening");
  });
  after(async () => {
    agent.destroy();
    srv.server.closeAllConnections();
    srv.server.close();
  });

  it("sends method, query, JSON body and the token in the Authorization header only", async () => {
    fresh();
    srv.handler = (_req, _body, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ event_id: "$e" }));
    };
    const res = await client().request({
      method: "PUT",
      path: path`/x/${"a b"}`,
      query: { since: "s 1&2", n: 5 },
      body: { a: "é" },
      schema: ok,
    });
    assert.equal(res.event_id, "$e");
    const seen = srv.seen[0]!;
    assert.equal(seen.method, "PUT");
    assert.equal(seen.url, "/x/a%20b?since=s+1%262&n=5");
    assert.equal(seen.headers.authorization, "Bearer secret-token");
    assert.equal(seen.headers["content-type"], "application/json");
    assert.equal(seen.headers["content-length"], String(Buffer.byteLength('{"a":"é"}')));
    assert.equal(seen.headers.host, srv.url.slice("http://".length));
    assert.equal(seen.body, '{"a":"é"}');
  });

  it("reuses one keep-alive connection for requests one after another", async () => {
    fresh();
    srv.handler = (_req, _body, res) => res.end(JSON.stringify({ event_id: "$e" }));
    const http = client();
    for (let i = 0; i < 5; i++) await http.request({ method: "GET", path: path`/r`, schema: ok });
    assert.equal(srv.seen.length, 5);
    assert.equal(srv.connections, 1);
  });

  it("sends again on a fresh connection when a reused one was closed by the server", async () => {
    fresh();
    let n = 0;
    srv.handler = (req, _body, res) => {
      n++;
      // The second request lands on the kept socket, which the server drops without answering.
      if (n === 2) return req.socket.destroy();
      res.end(JSON.stringify({ event_id: `$${n}` }));
    };
    const http = client();
    await http.request({ method: "GET", path: path`/r`, schema: ok });
    const second = await http.request({ method: "PUT", path: path`/r`, body: {}, schema: ok });
    assert.equal(second.event_id, "$3");
    assert.equal(srv.connections, 2);
  });

  it("does not send a POST twice: a dropped connection is a NetworkError", async () => {
    fresh();
    let n = 0;
    srv.handler = (req, _body, res) => {
      n++;
      if (n === 2) return req.socket.destroy();
      res.end("{}");
    };
    const http = client();
    await http.request({ method: "POST", path: path`/p`, body: {}, schema: anything });
    const err = await http
      .request({ method: "POST", path: path`/p`, body: {}, schema: anything })
      .catch((e: unknown) => e);
    assert.ok(err instanceof NetworkError);
    assert.equal(err.code, "NETWORK");
    assert.equal(n, 2);
  });

  it("maps Matrix errors with errcode, status and Retry-After, and never puts the token in them", async () => {
    fresh();
    srv.handler = (_req, _body, res) => {
      res.writeHead(429, { "retry-after": "3", "content-type": "application/json" });
      res.end(JSON.stringify({ errcode: "M_LIMIT_EXCEEDED", error: "slow down" }));
    };
    const err = await client()
      .request({ method: "GET", path: path`/x`, schema: ok })
      .catch((e: unknown) => e);
    assert.ok(err instanceof MatrixError);
    assert.equal(err.errcode, "M_LIMIT_EXCEEDED");
    assert.equal(err.httpStatus, 429);
    assert.equal(err.retryAfterMs, 3000);
    assert.ok(!JSON.stringify({ ...err, message: err.message }).includes("secret-token"));
  });

  it("maps a non-JSON error page to M_UNKNOWN, and a non-JSON success body to MalformedResponseError", async () => {
    fresh();
    srv.handler = (_req, _body, res) => {
      res.writeHead(502, { "content-type": "text/html" });
      res.end("<html>bad gateway</html>");
    };
    const page = await client()
      .request({ method: "GET", path: path`/x`, schema: ok })
      .catch((e: unknown) => e);
    assert.ok(page instanceof MatrixError);
    assert.equal(page.errcode, "M_UNKNOWN");
    assert.equal(page.httpStatus, 502);
    srv.handler = (_req, _body, res) => res.end("<html>not json</html>");
    const notJson = await client()
      .request({ method: "GET", path: path`/rooms/${"!secret:x"}`, schema: ok })
      .catch((e: unknown) => e);
    assert.ok(notJson instanceof MalformedResponseError);
    assert.equal(notJson.endpoint, "GET /rooms/{}");
    assert.deepEqual(notJson.issues, ["body is not JSON"]);
  });

  it("reads a large body in full, and refuses one over the bound, declared or streamed", async () => {
    fresh();
    const big = JSON.stringify({ event_id: "$big", pad: "x".repeat(3 * 1024 * 1024) });
    srv.handler = (_req, _body, res) => res.end(big);
    const read = await client().request({ method: "GET", path: path`/big`, schema: ok });
    assert.equal(read.event_id, "$big");
    const declared = await client()
      .request({ method: "GET", path: path`/big`, schema: ok, maxResponseBytes: 1024 * 1024 })
      .catch((e: unknown) => e);
    assert.ok(declared instanceof MalformedResponseError);
    assert.match(declared.issues[0]!, /larger than 1048576 bytes/);
    // Chunked, no Content-Length: the bound holds while reading.
    srv.handler = (_req, _body, res) => {
      for (let i = 0; i < 8; i++) res.write(big.slice(i * 500_000, (i + 1) * 500_000));
      res.end(big.slice(8 * 500_000));
    };
    const streamed = await client()
      .request({ method: "GET", path: path`/big`, schema: ok, maxResponseBytes: 1024 * 1024 })
      .catch((e: unknown) => e);
    assert.ok(streamed instanceof MalformedResponseError);
    // The client still works afterwards.
    srv.handler = (_req, _body, res) => res.end(JSON.stringify({ event_id: "$after" }));
    assert.equal((await client().request({ method: "GET", path: path`/x`, schema: ok })).event_id, "$after");
  });

  it("decodes gzip and brotli bodies, bounding the decoded size", async () => {
    fresh();
    const body = JSON.stringify({ event_id: "$z", pad: " ".repeat(100_000) });
    let encoding = "gzip";
    srv.handler = (req, _body, res) => {
      assert.match(String(req.headers["accept-encoding"]), /gzip/);
      res.writeHead(200, { "content-encoding": encoding });
      res.end(encoding === "gzip" ? gzipSync(body) : brotliCompressSync(body));
    };
    assert.equal((await client().request({ method: "GET", path: path`/z`, schema: ok })).event_id, "$z");
    encoding = "br";
    assert.equal((await client().request({ method: "GET", path: path`/z`, schema: ok })).event_id, "$z");
    encoding = "gzip";
    const bomb = await client()
      .request({ method: "GET", path: path`/z`, schema: ok, maxResponseBytes: 10_000 })
      .catch((e: unknown) => e);
    assert.ok(bomb instanceof MalformedResponseError);
  });

  it("reports a caller abort as ABORTED, before the answer and while the body streams", async () => {
    fresh();
    const ctrl = new AbortController();
    srv.handler = () => ctrl.abort(); // never answers
    const before = await client()
      .request({ method: "GET", path: path`/slow`, schema: ok, signal: ctrl.signal })
      .catch((e: unknown) => e);
    assert.ok(before instanceof NetworkError);
    assert.equal(before.code, "ABORTED");

    const mid = new AbortController();
    srv.handler = (_req, _body, res) => {
      res.write('{"event_id":');
      // The head and a first chunk are out; abort once the client has them.
      setImmediate(() => mid.abort());
    };
    const during = await client()
      .request({ method: "GET", path: path`/slow`, schema: ok, signal: mid.signal })
      .catch((e: unknown) => e);
    assert.ok(during instanceof NetworkError);
    assert.equal(during.code, "ABORTED");

    const already = await client()
      .request({ method: "GET", path: path`/slow`, schema: ok, signal: AbortSignal.abort() })
      .catch((e: unknown) => e);
    assert.ok(already instanceof NetworkError);
    assert.equal(already.code, "ABORTED");
  });

  it("reports a server that never finishes as TIMEOUT", async () => {
    fresh();
    srv.handler = (_req, _body, res) => res.write('{"event_id":'); // never ends
    const err = await client()
      .request({ method: "GET", path: path`/hang`, schema: ok, timeoutMs: 50 })
      .catch((e: unknown) => e);
    assert.ok(err instanceof NetworkError);
    assert.equal(err.code, "TIMEOUT");
  });

  it("with timeoutPerChunk, times the body from chunk to chunk: a slow body arrives, a stalled one times out", async () => {
    fresh();
    let res: ServerResponse | undefined;
    srv.handler = (_req, _body, r) => {
      r.writeHead(200, { "content-type": "application/json" });
      r.flushHeaders();
      res = r;
    };
    /** Bytes the client's sockets have read. */
    const read = () =>
      Object.values(agent.sockets)
        .flat()
        .reduce((n, s) => n + (s?.bytesRead ?? 0), 0);
    let settled = false;
    /**
     * Waits (no timers: setImmediate is not mocked) until the client has read past `n` bytes, or
     * its request ended (its socket gone).
     */
    const readPast = async (n: number) => {
      while (read() <= n && !settled) await new Promise<void>((r) => setImmediate(r));
      for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
    };
    const timeoutMs = 1_000;
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const slow = client().request({
        method: "GET",
        path: path`/slow`,
        schema: ok,
        timeoutMs,
        timeoutPerChunk: true,
      });
      slow.then(
        () => {},
        () => {
          settled = true;
        },
      );
      while (res === undefined) await new Promise<void>((r) => setImmediate(r));
      await readPast(0);
      // Each chunk just inside the timeout: together many times longer than it.
      for (const ch of '{"event_id":"$e"}') {
        mock.timers.tick(timeoutMs - 1);
        const before = read();
        res.write(ch);
        await readPast(before);
      }
      res.end();
      assert.deepEqual(await slow, { event_id: "$e" });

      res = undefined;
      const stalled = client()
        .request({ method: "GET", path: path`/stalled`, schema: ok, timeoutMs, timeoutPerChunk: true })
        .catch((e: unknown) => e);
      while (res === undefined) await new Promise<void>((r) => setImmediate(r));
      const before = read();
      (res as ServerResponse).write('{"event_id":');
      await readPast(before);
      mock.timers.tick(timeoutMs);
      const err = await stalled;
      assert.ok(err instanceof NetworkError, String(err));
      assert.equal(err.code, "TIMEOUT");
    } finally {
      mock.timers.reset();
      (res as ServerResponse | undefined)?.destroy();
    }
  });

  it("reports a refused connection as NETWORK", async () => {
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, "close");
    const http = new HttpClient({ baseUrl: `http://127.0.0.1:${port}`, transport: nodeHttpTransport() });
    const err = await http.request({ method: "GET", path: path`/x`, schema: ok }).catch((e: unknown) => e);
    assert.ok(err instanceof NetworkError);
    assert.equal(err.code, "NETWORK");
  });

  it("follows redirects as fetch does: 303 turns into a GET, the token stays on its origin", async () => {
    fresh();
    const other = new TestServer();
    other.handler = (_req, _body, res) => res.end(JSON.stringify({ event_id: "$other" }));
    other.server.listen(0, "127.0.0.1");
    await once(other.server, "listening");
    try {
      srv.handler = (req, _body, res) => {
        if (req.url === "/moved") res.writeHead(308, { location: "/here" }).end();
        else if (req.url === "/see") res.writeHead(303, { location: "/here" }).end();
        else if (req.url === "/away") res.writeHead(302, { location: `${other.url}/there` }).end();
        else res.end(JSON.stringify({ event_id: `${req.method} ${req.url}` }));
      };
      const http = client();
      const kept = await http.request({ method: "PUT", path: path`/moved`, body: { a: 1 }, schema: ok });
      assert.equal(kept.event_id, "PUT /here");
      assert.equal(srv.seen.at(-1)?.body, '{"a":1}');
      const seeOther = await http.request({ method: "POST", path: path`/see`, body: { a: 1 }, schema: ok });
      assert.equal(seeOther.event_id, "GET /here");
      const away = await http.request({ method: "GET", path: path`/away`, schema: ok });
      assert.equal(away.event_id, "$other");
      assert.equal(other.seen[0]?.headers.authorization, undefined);
      assert.equal(srv.seen.at(-1)?.headers.authorization, "Bearer secret-token");
    } finally {
      other.server.closeAllConnections();
      other.server.close();
    }
  });
});

describe("node:http transport, shared keep-alive agents", () => {
  it("close an idle socket themselves, before a server with a long keep-alive would", async () => {
    // The server keeps idle sockets for an hour, longer than the most stretched budget below: only
    // the client's idle timeout can end this one while the test waits.
    const server = createServer((_req, res) => res.end("{}"));
    server.keepAliveTimeout = 60 * 60_000;
    const closed = new Promise<void>((done) => server.on("connection", (s) => s.on("close", () => done())));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const client = new HttpClient({
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        accessToken: () => "t",
        transport: nodeHttpTransport(),
      });
      await client.request({ method: "POST", path: path`/x`, body: {}, schema: anything });
      // After KEEP_ALIVE_IDLE_MS; without an agent timeout, not before the server's hour.
      await withinBudget(
        closed,
        4 * KEEP_ALIVE_IDLE_MS,
        (spent) => new Error(`the client left its idle socket open (${spent} ms)`),
      );
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
