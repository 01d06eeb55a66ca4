import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { holdsAtMostConnections, rawExchange } from "../client/test-support/sockets.ts";
import type { WebhookRequest } from "./options.ts";
import {
  MAX_WEBHOOK_BODY_BYTES,
  MAX_WEBHOOK_CONNECTIONS,
  startWebhookServer,
  WebhookSecretError,
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

describe("bot webhook server, hostile input", () => {
  it("refuses to start with an empty, short or unsendable secret (an empty one let any request in)", async () => {
    const bot = { runWebhook: async () => true };
    for (const secret of ["", "short", "has spaces in the middle"]) {
      const started = await startWebhookServer(bot, { port: 0, secret }, quiet).catch((e: unknown) => e);
      if (started instanceof WebhookSecretError) continue;
      // Started: with "", a request without any Authorization header would be let in.
      await (started as WebhookServer).close();
      assert.fail(`started with the secret ${JSON.stringify(secret)}`);
    }
  });

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
      const hook =
        `POST /hooks/hook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\n` +
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
      await holdsAtMostConnections(server.url, MAX_WEBHOOK_CONNECTIONS, hook, /^HTTP\/1\.1 200 /);
    });
  });
});
