// Content the client is asked to send must reach others as it is: a lone surrogate (which a
// bot echoing a user's text can pass on), a NaN or infinite number (JSON.stringify writes null)
// or nesting deeper than others keep is refused with INVALID_ARGUMENT before any request, the
// same in plaintext and encrypted rooms.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MAX_EVENT_DEPTH, outgoingJsonProblem } from "../../wire/index.ts";
import { MatrixClient } from "../client.ts";
import { MemoryClientStore } from "../client-store/memory-store.ts";
import { ClientError } from "../errors.ts";

async function client(): Promise<{ c: MatrixClient; requests: string[] }> {
  const store = new MemoryClientStore();
  await store.saveSession({ homeserverUrl: "https://hs", userId: "@me:hs", deviceId: "D", accessToken: "t" });
  const requests: string[] = [];
  const c = new MatrixClient({
    homeserverUrl: "https://hs",
    store,
    fetch: async (url, init) => {
      const method = init?.method ?? "GET";
      // The room's encryption state, looked up before a send to a room sync has not shown: none.
      if (method === "GET") return new Response('{"errcode":"M_NOT_FOUND","error":"no"}', { status: 404 });
      requests.push(`${method} ${String(url)}`);
      return new Response(JSON.stringify({ event_id: "$e" }), { status: 200 });
    },
  });
  await c.restore();
  return { c, requests };
}

function nestedContent(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

const invalid = (e: unknown) => e instanceof ClientError && e.code === "INVALID_ARGUMENT";

describe("content the client sends", () => {
  it("is refused before any request when others would not get it as it is", async () => {
    const { c, requests } = await client();
    const room = "!r:hs";
    await assert.rejects(c.sendText(room, "lone \ud800 surrogate"), invalid);
    await assert.rejects(c.sendMessage(room, { msgtype: "m.text", body: "x", n: Number.NaN }), invalid);
    await assert.rejects(c.sendEvent(room, "x.t", { v: [1, Number.POSITIVE_INFINITY] }), invalid);
    await assert.rejects(c.sendEvent(room, "x.t", { "\udfff": 1 }), invalid);
    await assert.rejects(c.sendEvent(room, "x.t", nestedContent(MAX_EVENT_DEPTH)), invalid);
    await assert.rejects(c.sendStateEvent(room, "x.s", "", { s: "\ud83d" }), invalid);
    await assert.rejects(c.setAccountData("x.a", { s: "\ud83d" }), invalid);
    await assert.rejects(c.setRoomAccountData(room, "x.a", { n: Number.NEGATIVE_INFINITY }), invalid);
    assert.deepEqual(requests, []);
    // At the bound, well-formed text, pairs of surrogates and ordinary numbers go.
    await c.sendEvent(room, "x.t", nestedContent(MAX_EVENT_DEPTH - 1));
    await c.sendText(room, "emoji \ud83d\ude00 and 1.5");
    await c.setAccountData("x.a", { n: 1.5, s: "ok" });
    assert.equal(requests.length, 3);
    await c.close();
  });

  it("an ID or type with a lone surrogate (which no URL can carry) is refused with INVALID_ARGUMENT, not a URIError", async () => {
    const { c, requests } = await client();
    await assert.rejects(c.sendEvent("!r:hs", "x.\ud800", {}), invalid);
    await assert.rejects(c.sendEvent("!r\udc00:hs", "x.t", {}), invalid);
    await assert.rejects(c.sendStateEvent("!r:hs", "x.s", "\ud83d", {}), invalid);
    await assert.rejects(c.setAccountData("x.\ud800", {}), invalid);
    assert.deepEqual(requests, []);
    await c.close();
  });

  it("outgoingJsonProblem: none for JSON values, one for any lone surrogate or non-finite number in them", () => {
    const bad = fc.constantFrom<unknown>("\ud800", "a\udc00b", Number.NaN, Number.POSITIVE_INFINITY);
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), bad, fc.nat(), (value, poison, at) => {
        assert.equal(outgoingJsonProblem(value, 10), undefined);
        // Put the poison at one place of the value (a leaf of it, or beside it in an array).
        const places: unknown[][] = [];
        const walk = (v: unknown) => {
          if (Array.isArray(v)) {
            places.push(v);
            v.forEach(walk);
          } else if (typeof v === "object" && v !== null) Object.values(v).forEach(walk);
        };
        const root = [value];
        walk(root);
        const target = places[at % places.length] as unknown[];
        target.push(poison);
        assert.notEqual(outgoingJsonProblem(root, 12), undefined);
      }),
      { seed: 20261207, numRuns: 300 },
    );
  });
});
