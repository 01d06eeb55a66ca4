import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Clock } from "../clock.ts";
import { MatrixError } from "../errors.ts";
import { HttpClient } from "../http.ts";
import { silentLogger } from "../logger.ts";
import { newTxnId, SendQueue } from "./send-queue.ts";

const clock: Clock = { now: () => 0, random: () => 0.5, sleep: async () => {} };

function queue(respond: (url: string, body: unknown, n: number) => Response | Promise<Response>) {
  const calls: { url: string; body: unknown }[] = [];
  let n = 0;
  const http = new HttpClient({
    baseUrl: "https://hs",
    fetch: async (url, init) => {
      const body = init.body ? JSON.parse(String(init.body)) : undefined;
      calls.push({ url, body });
      return respond(url, body, n++);
    },
  });
  const prepared: string[] = [];
  const q = new SendQueue({
    http,
    clock,
    logger: silentLogger,
    prepare: async (roomId, type, content) => {
      prepared.push(`${roomId}:${type}`);
      return { type, content };
    },
  });
  return { q, calls, prepared };
}
const ok = (id: string) => new Response(JSON.stringify({ event_id: id }), { status: 200 });

describe("SendQueue", () => {
  it("retries transient failures under one transaction ID and prepares (encrypts) only once", async () => {
    const { q, calls, prepared } = queue((_u, _b, n) => {
      if (n === 0) throw new TypeError("reset");
      if (n === 1) return new Response(JSON.stringify({ errcode: "M_UNKNOWN" }), { status: 500 });
      return ok("$1");
    });
    assert.equal(
      await q.enqueue("!r:hs", { kind: "message", type: "m.room.message", content: { body: "x" } }, "txn1"),
      "$1",
    );
    assert.equal(calls.length, 3);
    assert.ok(
      calls.every((c) => c.url === "https://hs/_matrix/client/v3/rooms/!r%3Ahs/send/m.room.message/txn1"),
    );
    assert.deepEqual(prepared, ["!r:hs:m.room.message"]);
  });

  it("retries a rate limit or outage met while preparing (encrypting), then sends once", async () => {
    const calls: string[] = [];
    const http = new HttpClient({
      baseUrl: "https://hs",
      fetch: async (url) => {
        calls.push(url);
        return ok("$1");
      },
    });
    const failures = [
      new MatrixError(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 10 }),
      new MatrixError(502, { errcode: "M_UNKNOWN" }),
    ];
    let prepared = 0;
    const q = new SendQueue({
      http,
      clock,
      logger: silentLogger,
      prepare: async (_roomId, type, content) => {
        prepared++;
        const failure = failures.shift();
        if (failure) throw failure;
        return { type, content };
      },
    });
    assert.equal(await q.enqueue("!r:hs", { kind: "message", type: "m.room.message", content: {} }), "$1");
    assert.equal(prepared, 3);
    assert.equal(calls.length, 1);
  });

  it("does not retry a permanent refusal", async () => {
    const { q, calls } = queue(
      () => new Response(JSON.stringify({ errcode: "M_FORBIDDEN" }), { status: 403 }),
    );
    await assert.rejects(
      q.enqueue("!r:hs", { kind: "message", type: "m.room.message", content: {} }),
      (e: unknown) => e instanceof MatrixError && e.errcode === "M_FORBIDDEN",
    );
    assert.equal(calls.length, 1);
  });

  it("keeps order within a room even when an earlier send needs retries, and a failure does not block the rest", async () => {
    const { q, calls } = queue((_url, body, n) => {
      const b = (body as { body?: string }).body;
      if (b === "first" && n === 0) throw new TypeError("reset");
      if (b === "bad") return new Response(JSON.stringify({ errcode: "M_FORBIDDEN" }), { status: 403 });
      return ok(`$${b}`);
    });
    const results = await Promise.allSettled(
      ["first", "bad", "third"].map((b) =>
        q.enqueue("!r:hs", { kind: "message", type: "m.room.message", content: { body: b } }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      ["fulfilled", "rejected", "fulfilled"],
    );
    assert.deepEqual(
      calls.map((c) => (c.body as { body: string }).body),
      ["first", "first", "bad", "third"],
    );
    await q.drain();
  });

  it("sends redactions with their reason", async () => {
    const { q, calls } = queue(() => ok("$red"));
    await q.enqueue("!r:hs", { kind: "redaction", eventId: "$e/1", reason: "spam" }, "t");
    assert.equal(calls[0]?.url, "https://hs/_matrix/client/v3/rooms/!r%3Ahs/redact/%24e%2F1/t");
    assert.deepEqual(calls[0]?.body, { reason: "spam" });
  });

  it("makes distinct transaction IDs", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newTxnId()));
    assert.equal(ids.size, 1000);
  });
});
