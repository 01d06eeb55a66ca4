// A message prepared in plaintext (the room was not encrypted) and retried after a rate limit or a
// network failure went out in plaintext though sync had meanwhile brought the room's
// m.room.encryption: a retry may take minutes under rate limits. A plaintext message is prepared
// again (encrypted) when the room turned encrypted before a retry.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { SCRIPTED_SESSION, tempSqliteClientStore } from "../test-support/scripted-sync.ts";

const ROOM = "!r:hs";

const stateEvent = (id: string, type: string, stateKey: string, content: Record<string, unknown>) => ({
  event_id: id,
  type,
  state_key: stateKey,
  sender: "@me:hs",
  origin_server_ts: 1,
  content,
});
const me = stateEvent("$me", "m.room.member", "@me:hs", { membership: "join" });
const encryption = stateEvent("$enc", "m.room.encryption", "", { algorithm: "m.megolm.v1.aes-sha2" });

describe("a plaintext send retried after the room turned encrypted", () => {
  it("goes out encrypted", async (t) => {
    const { dir, store } = await tempSqliteClientStore(t, "keyroom-send-retry-");
    const bodies = [
      JSON.stringify({ next_batch: "s1", rooms: { join: { [ROOM]: { timeline: { events: [me] } } } } }),
      JSON.stringify({
        next_batch: "s2",
        rooms: { join: { [ROOM]: { timeline: { events: [encryption] } } } },
      }),
    ];
    const sent: string[] = [];
    let ownKeys: unknown;
    let client: MatrixClient | undefined;
    const fetchImpl = async (url: string, init?: RequestInit): Promise<Response> => {
      const path = decodeURIComponent(new URL(url).pathname);
      if (path.endsWith("/sync")) return new Response(bodies.shift() ?? '{"next_batch":"s3"}');
      if (path.endsWith(`/rooms/${ROOM}/members`)) return Response.json({ chunk: [me] });
      if (path.includes(`/rooms/${ROOM}/send/`)) {
        sent.push(path.split("/send/")[1]?.split("/")[0] ?? "");
        if (sent.length === 1) {
          // Rate limited; meanwhile sync brings the room's m.room.encryption.
          await client?.syncOnce({ timeoutMs: 0 });
          return Response.json({ errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 0 }, { status: 429 });
        }
        return Response.json({ event_id: `$s${sent.length}` });
      }
      if (path.endsWith("/keys/upload")) {
        const body = JSON.parse(String(init?.body)) as { device_keys?: unknown };
        if (body.device_keys !== undefined) ownKeys = body.device_keys;
        return Response.json({ one_time_key_counts: { signed_curve25519: 50 } });
      }
      if (path.endsWith("/keys/query"))
        return Response.json({ device_keys: { "@me:hs": { D: ownKeys } }, failures: {} });
      return Response.json({ errcode: "M_NOT_FOUND" }, { status: 404 });
    };
    client = new MatrixClient({
      homeserverUrl: SCRIPTED_SESSION.homeserverUrl,
      store,
      fillTimelineGaps: false,
      encryption: { store: { directory: dir } },
      fetch: fetchImpl,
    });
    t.after(() => client?.close());
    await client.restore();
    await client.syncOnce({ timeoutMs: 0 });
    assert.equal(client.getRoom(ROOM)?.encrypted, false);
    await client.sendText(ROOM, "hello");
    assert.equal(client.getRoom(ROOM)?.encrypted, true);
    assert.deepEqual(sent, ["m.room.message", "m.room.encrypted"]);
  });
});
