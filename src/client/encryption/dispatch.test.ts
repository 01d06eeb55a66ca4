import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { OutgoingRequest } from "../../e2ee/index.ts";
import { HttpClient } from "../http.ts";
import { sendOutgoingRequest } from "./dispatch.ts";

function recordingHttp(): { http: HttpClient; calls: { method: string; url: string; body: unknown }[] } {
  const calls: { method: string; url: string; body: unknown }[] = [];
  const http = new HttpClient({
    baseUrl: "https://hs.example",
    accessToken: () => "token",
    fetch: async (url, init) => {
      calls.push({ method: init.method ?? "GET", url, body: JSON.parse(String(init.body)) });
      return new Response(JSON.stringify({ ok: 1 }), {
        status: 200,
        headers: { "Content-Type": "application/json" },
      });
    },
  });
  return { http, calls };
}

describe("sendOutgoingRequest", () => {
  const cases: [OutgoingRequest, string, string][] = [
    [{ id: "1", type: "keys_upload", body: {} }, "POST", "/_matrix/client/v3/keys/upload"],
    [{ id: "2", type: "keys_query", body: { device_keys: {} } }, "POST", "/_matrix/client/v3/keys/query"],
    [{ id: "3", type: "keys_claim", body: { one_time_keys: {} } }, "POST", "/_matrix/client/v3/keys/claim"],
    [
      { id: "txn/4", type: "to_device", eventType: "m.room.encrypted", body: { messages: {} } },
      "PUT",
      "/_matrix/client/v3/sendToDevice/m.room.encrypted/txn%2F4",
    ],
    [{ id: "5", type: "signature_upload", body: {} }, "POST", "/_matrix/client/v3/keys/signatures/upload"],
  ];
  for (const [request, method, path] of cases) {
    it(`sends ${request.type} to ${path}`, async () => {
      const { http, calls } = recordingHttp();
      assert.deepEqual(await sendOutgoingRequest(http, request), { ok: 1 });
      assert.equal(calls.length, 1);
      assert.equal(calls[0]?.method, method);
      assert.equal(calls[0]?.url, `https://hs.example${path}`);
      assert.deepEqual(calls[0]?.body, request.body);
    });
  }

  it("refuses a request type it does not know", async () => {
    const { http } = recordingHttp();
    const bogus = { id: "x", type: "bogus", body: {} } as unknown as OutgoingRequest;
    await assert.rejects(sendOutgoingRequest(http, bogus), TypeError);
  });
});
