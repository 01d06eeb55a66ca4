// A send made while the client's encryption is still starting (its crypto store opening, e.g. right
// after `restore()` with a new client store): the crypto store could not be asked whether it
// recorded the room as encrypted, that counted as "no", and a room whose `m.room.encryption` the
// server no longer shows (a state reset) got the message in plaintext.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCryptoStore, MemoryStoreData } from "../../store/memory/memory-store.ts";
import { MatrixClient } from "../client.ts";

const SESSION = { homeserverUrl: "https://hs", userId: "@me:hs", deviceId: "D", accessToken: "t" };
const ROOM = "!r:hs";

const member = {
  event_id: "$me",
  type: "m.room.member",
  state_key: "@me:hs",
  sender: "@me:hs",
  origin_server_ts: 1,
  content: { membership: "join" },
};
const encryption = {
  event_id: "$enc",
  type: "m.room.encryption",
  state_key: "",
  sender: "@me:hs",
  origin_server_ts: 1,
  content: { algorithm: "m.megolm.v1.aes-sha2" },
};

/** A server whose room lost `m.room.encryption` after `syncs` (a state reset). */
function server(syncs: string[]) {
  const sent: string[] = [];
  let ownKeys: unknown;
  const fetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const path = decodeURIComponent(new URL(String(url)).pathname);
    if (path.endsWith("/sync")) return new Response(syncs.shift() ?? '{"next_batch":"s9"}');
    if (path.includes(`/rooms/${ROOM}/state/m.room.encryption`)) {
      return Response.json({ errcode: "M_NOT_FOUND" }, { status: 404 });
    }
    if (path.endsWith(`/rooms/${ROOM}/state`)) return Response.json([member]);
    if (path.endsWith(`/rooms/${ROOM}/members`)) return Response.json({ chunk: [member] });
    if (path.includes(`/rooms/${ROOM}/send/`)) {
      sent.push(path.split("/send/")[1]?.split("/")[0] ?? "");
      return Response.json({ event_id: `$s${sent.length}` });
    }
    if (path.endsWith("/keys/upload")) {
      const body = JSON.parse(String(init?.body)) as { device_keys?: unknown };
      if (body.device_keys !== undefined) ownKeys = body.device_keys;
      return Response.json({ one_time_key_counts: { signed_curve25519: 50 } });
    }
    if (path.endsWith("/keys/query")) {
      return Response.json({ device_keys: { "@me:hs": { D: ownKeys } }, failures: {} });
    }
    if (init?.method === "PUT" && path.includes("/sendToDevice/")) return Response.json({});
    return Response.json({ errcode: "M_NOT_FOUND" }, { status: 404 });
  };
  return { sent, fetch };
}

describe("a send while encryption is starting", () => {
  it("waits for the crypto store, which recorded the room as encrypted: never plaintext", async (t) => {
    const data = new MemoryStoreData();
    const open = () => MemoryCryptoStore.open({ userId: SESSION.userId, deviceId: SESSION.deviceId, data });
    // The room is encrypted, and the crypto store records it so.
    const first = server([
      JSON.stringify({
        next_batch: "s1",
        rooms: { join: { [ROOM]: { state: { events: [member, encryption] }, timeline: { events: [] } } } },
      }),
    ]);
    const before = new MatrixClient({
      homeserverUrl: SESSION.homeserverUrl,
      fillTimelineGaps: false,
      encryption: { store: open },
      fetch: first.fetch,
    });
    await before.restore(SESSION);
    await before.syncOnce({ timeoutMs: 0 });
    assert.equal(await before.isRoomEncrypted(ROOM), true);
    await before.close();

    // A new client store (nothing synced yet), the same crypto store, slow to open; the server's
    // state of the room has no m.room.encryption any more.
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let opening = (): void => undefined;
    const opened = new Promise<void>((resolve) => {
      opening = resolve;
    });
    const after = server([]);
    const client = new MatrixClient({
      homeserverUrl: SESSION.homeserverUrl,
      fillTimelineGaps: false,
      encryption: {
        store: async () => {
          opening();
          await gate;
          return open();
        },
      },
      fetch: after.fetch,
    });
    t.after(() => client.close());
    const restoring = client.restore(SESSION);
    await opened;
    const sending = client.sendText(ROOM, "secret");
    sending.catch(() => undefined);
    // Every turn a plaintext send would need (its requests are answered at once), then the store opens.
    for (let i = 0; i < 50 && after.sent.length === 0; i++) await new Promise((r) => setImmediate(r));
    release();
    await restoring;
    await sending;
    assert.deepEqual(after.sent, ["m.room.encrypted"]);
  });
});
