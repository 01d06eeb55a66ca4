import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { describe, it } from "node:test";
import type { WebhookRequest } from "./bot.ts";
import {
  MAX_WEBHOOK_BODY_BYTES,
  MAX_WEBHOOK_CONNECTIONS,
  startWebhookServer,
  type WebhookServer,
} from "./webhooks.ts";

const SECRET = "webhook-secret-0123456789";
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

async function withServer(
  run: (server: WebhookServer, got: WebhookRequest[]) => Promise<void>,
): Promise<void> {
  const got: WebhookRequest[] = [];
  const bot = {
    runWebhook: async (req: WebhookRequest) => {
      got.push(req);
      return req.name === "hook";
    },
  };
  const server = await startWebhookServer(bot, { port: 0, secret: SECRET }, quiet);
  try {
    await run(server, got);
  } finally {
    await server.close();
  }
}

const post = (server: WebhookServer, body: BodyInit, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/hooks/hook`, {
    method: "POST",
    headers: { Authorization: `Bearer ${SECRET}`, ...headers },
    body,
  });

/** Sends `head` (request line and headers, no body) in one write; reads until the server closes. */
function rawExchange(url: string, head: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    let out = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      out += d;
    });
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(out));
  });
}

describe("bot webhook server, hostile input", () => {
  it("refuses a missing or wrong secret without running the handler", async () => {
    await withServer(async (server, got) => {
      for (const auth of [
        undefined,
        "Bearer wrong",
        `Bearer ${SECRET}x`,
        `Bearer ${SECRET.slice(1)}`,
        SECRET,
      ]) {
        const res = await fetch(`${server.url}/hooks/hook`, {
          method: "POST",
          headers: auth === undefined ? {} : { Authorization: auth },
          body: "{}",
        });
        assert.equal(res.status, 401, String(auth));
      }
      assert.equal(got.length, 0);
      assert.equal((await post(server, "{}", { "Content-Type": "application/json" })).status, 200);
    });
  });

  it("answers 413 at once to a body announced over MAX_WEBHOOK_BODY_BYTES, without reading it", async () => {
    await withServer(async (server, got) => {
      const out = await rawExchange(
        server.url,
        `POST /hooks/hook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\n` +
          `Content-Length: ${MAX_WEBHOOK_BODY_BYTES + 1}\r\n\r\n`,
      );
      assert.match(out, /^HTTP\/1\.1 413 /);
      assert.equal(got.length, 0);
      assert.equal((await post(server, "{}")).status, 200, "the server keeps serving");
    });
  });

  it("refuses a body that is not UTF-8, or JSON with a lone surrogate, with 400", async () => {
    await withServer(async (server, got) => {
      const notUtf8 = await post(server, new Uint8Array([0x68, 0x69, 0xff, 0xfe]));
      assert.equal(notUtf8.status, 400);
      const lone = await post(server, '{"text":"\\ud800"}', { "Content-Type": "application/json" });
      assert.equal(lone.status, 400);
      const loneKey = await post(server, '{"\\udc00":[1,{"a":"b"}]}', { "Content-Type": "application/json" });
      assert.equal(loneKey.status, 400);
      assert.equal(got.length, 0);
      const pair = await post(server, '{"text":"\\ud83d\\ude00"}', { "Content-Type": "application/json" });
      assert.equal(pair.status, 200, "a surrogate pair is well-formed");
      assert.deepEqual(got[0]?.body, { text: "😀" });
    });
  });

  it("does not hand the secret to the handler", async () => {
    await withServer(async (server, got) => {
      assert.equal((await post(server, "hi", { "X-Custom": "kept" })).status, 200);
      assert.equal(got[0]?.body, "hi");
      assert.equal(got[0]?.headers["x-custom"], "kept");
      assert.equal(got[0]?.headers.authorization, undefined);
      assert.ok(!JSON.stringify(got[0]?.headers).includes(SECRET));
    });
  });

  it("holds at most MAX_WEBHOOK_CONNECTIONS connections: one more is dropped at once, and it serves again after", async () => {
    await withServer(async (server) => {
      const { hostname, port } = new URL(server.url);
      const open = () =>
        new Promise<Socket>((resolve) => {
          const socket = connect(Number(port), hostname, () => resolve(socket));
          socket.on("error", () => undefined);
        });
      const held: Socket[] = [];
      try {
        // Idle connections (no request yet), accepted in the order they connect.
        for (let i = 0; i < MAX_WEBHOOK_CONNECTIONS; i++) held.push(await open());
        const extra = await open();
        const firstClosed = await Promise.race(
          [...held, extra].map((s, i) => new Promise<number>((resolve) => s.once("close", () => resolve(i)))),
        );
        assert.equal(firstClosed, MAX_WEBHOOK_CONNECTIONS, "the connection over the bound goes first");
        for (const s of held) s.destroy();
        // The server sees them go as its side reads the ends: retry until it has room again.
        for (;;) {
          const res = await post(server, "{}").catch(() => undefined);
          if (res?.status === 200) break;
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        for (const s of held) s.destroy();
      }
    });
  });
});
