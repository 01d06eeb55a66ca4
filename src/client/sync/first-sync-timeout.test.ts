// A sync asked for without a long-poll wait (the first one, the catch-up after a restart) is the
// one the server computes in full and the one with the most to read: a big account's takes tens of
// seconds. It had the long-poll's grace alone (15 s) for all of it, body included, so a first sync
// slower than that was cut off, and asked for again in vain, for ever. Its body, up to
// MAX_SYNC_RESPONSE_BYTES, is then timed from chunk to chunk: one timer over the whole of it cut
// off a big first sync on a slow link however patient the bound.
import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { NetworkError } from "../errors.ts";
import { INSTANT_CLOCK, restoredMemoryClient } from "../test-support/scripted-sync.ts";
import { CATCH_UP_SYNC_TIMEOUT_MS, DEFAULT_SYNC_TIMEOUT_MS, SYNC_TIMEOUT_GRACE_MS } from "./loop.ts";

/** A `/sync` that answers once the test says so, and fails as fetch does when its request is aborted. */
function slowServer() {
  let answer: () => void = () => {};
  let asked: () => void = () => {};
  const requested = new Promise<void>((r) => {
    asked = r;
  });
  const fetch = (_url: string, init: RequestInit): Promise<Response> =>
    new Promise((resolve, reject) => {
      init.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      answer = () => resolve(new Response(JSON.stringify({ next_batch: "s1" }), { status: 200 }));
      asked();
    });
  return { fetch, requested, answer: () => answer() };
}

describe("the request timeout of a sync without a long-poll wait", () => {
  it("gives the server CATCH_UP_SYNC_TIMEOUT_MS, far more than a long-poll's grace", async () => {
    assert.ok(CATCH_UP_SYNC_TIMEOUT_MS > DEFAULT_SYNC_TIMEOUT_MS + SYNC_TIMEOUT_GRACE_MS);
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const server = slowServer();
      const client = await restoredMemoryClient({ fetch: server.fetch, clock: INSTANT_CLOCK });
      const sync = client.syncOnce({ timeoutMs: 0 });
      await server.requested;
      mock.timers.tick(CATCH_UP_SYNC_TIMEOUT_MS - 1);
      server.answer();
      await sync;
      assert.equal(client.nextBatch, "s1");

      // Still bounded: a server that never answers times out.
      const silent = slowServer();
      const stuck = await restoredMemoryClient({ fetch: silent.fetch, clock: INSTANT_CLOCK });
      const never = stuck.syncOnce({ timeoutMs: 0 });
      await silent.requested;
      mock.timers.tick(CATCH_UP_SYNC_TIMEOUT_MS);
      const err = await never.catch((e: unknown) => e);
      assert.ok(err instanceof NetworkError, String(err));
      assert.equal(err.code, "TIMEOUT");
    } finally {
      mock.timers.reset();
    }
  });

  it("times the body from chunk to chunk: a long body on a slow link arrives, a stalled one times out", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      // A body whose chunks the test hands out; the request's abort errors it, as fetch's would.
      let body!: ReadableStreamDefaultController<Uint8Array>;
      let asked: () => void = () => {};
      let requested = new Promise<void>((r) => {
        asked = r;
      });
      const fetch = async (_url: string, init: RequestInit): Promise<Response> => {
        const stream = new ReadableStream<Uint8Array>({
          start: (c) => {
            body = c;
            init.signal?.addEventListener("abort", () => c.error(new DOMException("aborted", "AbortError")));
          },
        });
        asked();
        return new Response(stream, { status: 200 });
      };
      /** Lets the client take what was handed out (no timers: setImmediate is not mocked). */
      const taken = () => new Promise<void>((r) => setImmediate(r));
      const client = await restoredMemoryClient({ fetch, clock: INSTANT_CLOCK });
      const sync = client.syncOnce({ timeoutMs: 0 });
      await requested;
      // Each chunk just inside the timeout: together many times longer than it.
      for (const ch of JSON.stringify({ next_batch: "s1" })) {
        mock.timers.tick(CATCH_UP_SYNC_TIMEOUT_MS - 1);
        body.enqueue(new TextEncoder().encode(ch));
        await taken();
      }
      body.close();
      await sync;
      assert.equal(client.nextBatch, "s1");

      // A body that stops arriving still times out, a long-poll's after its own bound.
      requested = new Promise<void>((r) => {
        asked = r;
      });
      const stalled = client.syncOnce({ timeoutMs: DEFAULT_SYNC_TIMEOUT_MS });
      await requested;
      body.enqueue(new TextEncoder().encode('{"next_batch":'));
      await taken();
      mock.timers.tick(DEFAULT_SYNC_TIMEOUT_MS + SYNC_TIMEOUT_GRACE_MS);
      const err = await stalled.catch((e: unknown) => e);
      assert.ok(err instanceof NetworkError, String(err));
      assert.equal(err.code, "TIMEOUT");
    } finally {
      mock.timers.reset();
    }
  });
});
