// A login (or restore) as another user or device on a client whose previous session's encryption
// still runs, when the new account's crypto store is refused (locked, wrong passphrase, a factory
// that throws): the previous session's driver stayed plugged in, so sends went on being encrypted,
// by the previous account's device, under the new session. Now the previous driver is unplugged
// (and its store closed) before the new store is opened: a failed start leaves no encryption
// running, and sends are refused with NOT_STARTED.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCryptoStore, MemoryStoreData } from "../../store/memory/memory-store.ts";
import { MatrixClient } from "../client.ts";
import { MemoryClientStore, type SyncSnapshot } from "../client-store/index.ts";
import { ClientError } from "../errors.ts";
import { joinedMember, MEGOLM_ENCRYPTION_STATE } from "../test-support/room-state.ts";
import type { CryptoStoreFactory } from "./options.ts";

const FIRST = { homeserverUrl: "https://hs", userId: "@me:hs", deviceId: "D", accessToken: "t1" };
const ROOM = "!r:hs";

/** A server with one encrypted room; `/login` answers as `login` says. */
function server(login: { userId: string; deviceId: string }) {
  const sent: string[] = [];
  const keys = new Map<string, unknown>();
  const syncs = [
    JSON.stringify({
      next_batch: "s1",
      rooms: {
        join: {
          [ROOM]: {
            state: { events: [joinedMember(FIRST.userId), MEGOLM_ENCRYPTION_STATE] },
            timeline: { events: [] },
          },
        },
      },
    }),
  ];
  const fetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const path = decodeURIComponent(new URL(String(url)).pathname);
    if (path.endsWith("/login") && init?.method === "POST") {
      return Response.json({ user_id: login.userId, device_id: login.deviceId, access_token: "t2" });
    }
    if (path.endsWith("/sync")) return new Response(syncs.shift() ?? '{"next_batch":"s9"}');
    if (path.endsWith(`/rooms/${ROOM}/members`))
      return Response.json({ chunk: [joinedMember(FIRST.userId)] });
    if (path.includes(`/rooms/${ROOM}/send/`)) {
      sent.push(path.split("/send/")[1]?.split("/")[0] ?? "");
      return Response.json({ event_id: `$s${sent.length}` });
    }
    if (path.endsWith("/keys/upload")) {
      const body = JSON.parse(String(init?.body)) as { device_keys?: { user_id: string; device_id: string } };
      if (body.device_keys !== undefined) keys.set(body.device_keys.user_id, body.device_keys);
      return Response.json({ one_time_key_counts: { signed_curve25519: 50 } });
    }
    if (path.endsWith("/keys/query")) {
      const mine = keys.get(FIRST.userId) as { device_id: string } | undefined;
      const deviceKeys = mine ? { [FIRST.userId]: { [mine.device_id]: mine } } : {};
      return Response.json({ device_keys: deviceKeys, failures: {} });
    }
    if (init?.method === "PUT" && path.includes("/sendToDevice/")) return Response.json({});
    if (path.endsWith("/logout") || path.endsWith("/logout/all")) return Response.json({});
    return Response.json({ errcode: "M_NOT_FOUND" }, { status: 404 });
  };
  return { sent, fetch };
}

/** A client store whose `loadSync` fails once `failing` is set (a disk error, say). */
class FailingClientStore extends MemoryClientStore {
  failing = false;
  override async loadSync(): Promise<SyncSnapshot | undefined> {
    if (this.failing) throw new ClientError("STORE_FAILED", "reading client store failed (SQLITE_IOERR)");
    return super.loadSync();
  }
}

const refused = (code: string) => (e: unknown) =>
  e instanceof Error &&
  (e.name === "ClientCryptoError" || e.name === "ClientError") &&
  (e as { code?: unknown }).code === code;

/**
 * A client running encryption for `FIRST` (synced, the room known encrypted), whose crypto store
 * factory refuses any other account as a locked store would; `firstStore` is that session's data.
 */
async function runningClient(login: { userId: string; deviceId: string }) {
  const firstStore = new MemoryStoreData();
  const clientStore = new FailingClientStore();
  const s = server(login);
  const factory: CryptoStoreFactory = (account) => {
    if (account.userId === FIRST.userId && account.deviceId === FIRST.deviceId) {
      return MemoryCryptoStore.open({ ...account, data: firstStore });
    }
    throw new Error("the crypto store is locked by another process");
  };
  const client = new MatrixClient({
    homeserverUrl: FIRST.homeserverUrl,
    store: clientStore,
    fillTimelineGaps: false,
    encryption: { store: factory },
    fetch: s.fetch,
  });
  await client.restore(FIRST);
  await client.syncOnce({ timeoutMs: 0 });
  await client.sendText(ROOM, "as the first session");
  assert.deepEqual(s.sent, ["m.room.encrypted"], "the first session encrypts");
  s.sent.length = 0;
  assert.equal(firstStore.inUse, true);
  return { client, sent: s.sent, firstStore, clientStore };
}

/** After the failed start: no encryption of the previous account runs, and sends are refused. */
async function nothingOfThePreviousAccount(
  client: MatrixClient,
  sent: string[],
  firstStore: MemoryStoreData,
  startError = "STORE_FACTORY_FAILED",
): Promise<void> {
  const sending = client.sendText(ROOM, "secret");
  sending.catch(() => undefined);
  await assert.rejects(sending, (e: unknown) => {
    assert.ok(refused("NOT_STARTED")(e), `refused, not sent: ${String(e)}`);
    assert.ok(refused(startError)((e as Error).cause), "the start's error as cause");
    return true;
  });
  assert.deepEqual(sent, [], "nothing sent, encrypted by the previous account or not");
  assert.throws(() => client.crypto, refused("NOT_ENABLED"));
  assert.equal(firstStore.inUse, false, "the previous session's crypto store is closed");
}

describe("a login or restore as another account whose crypto store is refused", () => {
  for (const [what, other] of [
    ["another user", { userId: "@other:hs", deviceId: "E" }],
    ["another device of the same user", { userId: FIRST.userId, deviceId: "E" }],
  ] as const) {
    it(`login as ${what}: the previous session's encryption is stopped, sends refused`, async (t) => {
      const { client, sent, firstStore } = await runningClient(other);
      t.after(() => client.close());
      await assert.rejects(
        client.login({ user: other.userId, password: "pw", deviceId: other.deviceId }),
        refused("STORE_FACTORY_FAILED"),
      );
      await nothingOfThePreviousAccount(client, sent, firstStore);
    });

    it(`restore as ${what}: the same`, async (t) => {
      const { client, sent, firstStore } = await runningClient(other);
      t.after(() => client.close());
      await assert.rejects(
        client.restore({ ...FIRST, ...other, accessToken: "t2" }),
        refused("STORE_FACTORY_FAILED"),
      );
      await nothingOfThePreviousAccount(client, sent, firstStore);
    });

    it(`restore as ${what} failing before its crypto store is asked (the client store): the same`, async (t) => {
      const { client, sent, firstStore, clientStore } = await runningClient(other);
      t.after(() => client.close());
      clientStore.failing = true;
      await assert.rejects(client.restore({ ...FIRST, ...other, accessToken: "t2" }), /SQLITE_IOERR/);
      clientStore.failing = false;
      await nothingOfThePreviousAccount(client, sent, firstStore, "STORE_FAILED");
    });
  }
});
