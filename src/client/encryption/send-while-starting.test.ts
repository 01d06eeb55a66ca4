// Sends whose room's encryption only the crypto store remembers (the room's `m.room.encryption`
// gone from the server's state, a state reset, and from a new client store), made while the
// client's encryption is not running: the crypto store could not be asked, that counted as "no",
// and the message went out in plaintext. Now a send made while encryption starts (right after
// `restore()`, or during a login's crypto store opening) waits for it, and one made while it does
// not run (its start failed, or the client was closed) is refused with a `ClientCryptoError`.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCryptoStore, MemoryStoreData } from "../../store/memory/memory-store.ts";
import { MatrixClient } from "../client.ts";
import { gatedCryptoStore } from "../test-support/gated-crypto-store.ts";
import { joinedMember, MEGOLM_ENCRYPTION_STATE } from "../test-support/room-state.ts";
import type { CryptoStoreFactory } from "./options.ts";

const SESSION = { homeserverUrl: "https://hs", userId: "@me:hs", deviceId: "D", accessToken: "t" };
const ROOM = "!r:hs";

const member = joinedMember("@me:hs");

/** A server whose room lost `m.room.encryption` after `syncs` (a state reset). */
function server(syncs: string[]) {
  const sent: string[] = [];
  const uploads: string[] = [];
  let ownKeys: unknown;
  const fetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const path = decodeURIComponent(new URL(String(url)).pathname);
    if (path.endsWith("/login") && init?.method === "POST") {
      return Response.json({ user_id: SESSION.userId, device_id: SESSION.deviceId, access_token: "t" });
    }
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
    if (path.endsWith("/media/v3/upload")) {
      uploads.push(path);
      return Response.json({ content_uri: "mxc://hs/m" });
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
  return { sent, uploads, fetch };
}

/** A crypto store that recorded the room as encrypted (a first client synced it, then closed). */
async function storeThatKnowsTheRoom(): Promise<() => Promise<MemoryCryptoStore>> {
  const data = new MemoryStoreData();
  const open = () => MemoryCryptoStore.open({ userId: SESSION.userId, deviceId: SESSION.deviceId, data });
  const first = server([
    JSON.stringify({
      next_batch: "s1",
      rooms: {
        join: { [ROOM]: { state: { events: [member, MEGOLM_ENCRYPTION_STATE] }, timeline: { events: [] } } },
      },
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
  return open;
}

/** A new client store (nothing synced yet) on a server whose room state has no m.room.encryption. */
function newClient(store: CryptoStoreFactory, fetch: ReturnType<typeof server>["fetch"]): MatrixClient {
  return new MatrixClient({
    homeserverUrl: SESSION.homeserverUrl,
    fillTimelineGaps: false,
    encryption: { store },
    fetch,
  });
}

/** Every turn a plaintext send would need (the fake server answers at once). */
async function turns(sent: string[]): Promise<void> {
  for (let i = 0; i < 50 && sent.length === 0; i++) await new Promise((r) => setImmediate(r));
}

const refused = (code: string) => (e: unknown) =>
  e instanceof Error && e.name === "ClientCryptoError" && (e as { code?: unknown }).code === code;

describe("a send while encryption is starting", () => {
  it("right after restore(): waits for the crypto store, which recorded the room as encrypted", async (t) => {
    const open = await storeThatKnowsTheRoom();
    const { factory, opened, release } = gatedCryptoStore(open);
    const after = server([]);
    const client = newClient(factory, after.fetch);
    t.after(() => client.close());
    const restoring = client.restore(SESSION);
    await opened;
    const sending = client.sendText(ROOM, "secret");
    sending.catch(() => undefined);
    await turns(after.sent);
    release();
    await restoring;
    await sending;
    assert.deepEqual(after.sent, ["m.room.encrypted"]);
  });

  it("during a login's crypto store opening: waits for it too, never plaintext", async (t) => {
    const open = await storeThatKnowsTheRoom();
    const { factory, opened, release } = gatedCryptoStore(open);
    const after = server([]);
    const client = newClient(factory, after.fetch);
    t.after(() => client.close());
    const login = client.login({ user: SESSION.userId, password: "pw", deviceId: SESSION.deviceId });
    login.catch(() => undefined);
    await opened;
    const sending = client.sendText(ROOM, "secret");
    sending.catch(() => undefined);
    await turns(after.sent);
    release();
    await login;
    await sending;
    assert.deepEqual(after.sent, ["m.room.encrypted"]);
  });
});

describe("a send while encryption is configured but not running", () => {
  it("after a failed start (the store could not open): refused with NOT_STARTED, nothing sent", async (t) => {
    const after = server([]);
    const locked = new Error("the crypto store is locked by another process");
    const client = newClient(() => Promise.reject(locked), after.fetch);
    t.after(() => client.close());
    await assert.rejects(client.restore(SESSION), refused("STORE_FACTORY_FAILED"));

    await assert.rejects(client.sendText(ROOM, "secret"), (e: unknown) => {
      assert.ok(refused("NOT_STARTED")(e));
      // The start's own error is the cause.
      assert.ok(refused("STORE_FACTORY_FAILED")((e as Error).cause));
      return true;
    });
    await assert.rejects(client.sendEvent(ROOM, "m.reaction", {}), refused("NOT_STARTED"));
    await assert.rejects(
      client.sendFile(ROOM, new Uint8Array([1, 2, 3]), { filename: "x.bin" }),
      refused("NOT_STARTED"),
    );
    assert.deepEqual(after.sent, []);
    assert.deepEqual(after.uploads, [], "no plaintext upload either");
  });

  it("a send racing a start that then fails: refused, nothing sent", async (t) => {
    const { factory, opened, release } = gatedCryptoStore(() =>
      Promise.reject(new Error("wrong passphrase")),
    );
    const after = server([]);
    const client = newClient(factory, after.fetch);
    t.after(() => client.close());
    const restoring = client.restore(SESSION);
    restoring.catch(() => undefined);
    await opened;
    const sending = client.sendText(ROOM, "secret");
    sending.catch(() => undefined);
    await turns(after.sent);
    release();
    await assert.rejects(restoring);
    await assert.rejects(sending, refused("NOT_STARTED"));
    assert.deepEqual(after.sent, []);
  });

  it("after close(): refused with CLOSED, nothing sent", async () => {
    const open = await storeThatKnowsTheRoom();
    const after = server([]);
    const client = newClient(open, after.fetch);
    await client.restore(SESSION);
    await client.close();
    await assert.rejects(client.sendText(ROOM, "secret"), refused("CLOSED"));
    assert.deepEqual(after.sent, []);
  });

  it("a client without encryption keeps sending plaintext where the room's state shows none", async (t) => {
    const after = server([]);
    const client = new MatrixClient({
      homeserverUrl: SESSION.homeserverUrl,
      fillTimelineGaps: false,
      fetch: after.fetch,
    });
    t.after(() => client.close());
    await client.restore(SESSION);
    await client.sendText(ROOM, "hello");
    assert.deepEqual(after.sent, ["m.room.message"]);
  });
});
