// Two tabs of one origin logging in at once on one IndexedDB client store (fake-indexeddb: two
// connections to one database, as two tabs hold). Both read the store before either saves: the
// second save must not silently replace the first tab's session while that tab keeps using its
// device, which nothing would then remember (an orphaned device on the account).
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ApiCall } from "../call.ts";
import { MatrixClient } from "../client.ts";
import { IndexedDbClientStore } from "../client-store/idb-store.ts";
import type { StoredSession } from "../client-store/store.ts";
import { ClientError } from "../errors.ts";
import { hookedFactory } from "../test-support/hooked-idb.ts";
import { Session } from "./session.ts";

const HS = "https://hs";

/**
 * A homeserver whose logins answer only once `together` of them have arrived (so that both tabs
 * have read the store first), each with a new device; /logout deletes the device.
 */
function server(together: number) {
  const live = new Map<string, { userId: string; deviceId: string }>();
  let devices = 0;
  const arrived: (() => void)[] = [];
  const fetch = async (url: string, init: RequestInit): Promise<Response> => {
    const path = new URL(url).pathname;
    const body = init.body ? (JSON.parse(String(init.body)) as Record<string, unknown>) : {};
    const auth = new Headers(init.headers).get("authorization")?.replace("Bearer ", "");
    const json = (status: number, b: unknown) => new Response(JSON.stringify(b), { status });
    if (path === "/_matrix/client/v3/login") {
      await new Promise<void>((resolve) => {
        arrived.push(resolve);
        if (arrived.length >= together) for (const r of arrived.splice(0)) r();
      });
      const user = (body.identifier as { user: string }).user;
      const session = { userId: `@${user}:hs`, deviceId: `DEV${++devices}` };
      const token = `tok-${session.deviceId}`;
      live.set(token, session);
      return json(200, { user_id: session.userId, access_token: token, device_id: session.deviceId });
    }
    if (auth === undefined || !live.has(auth)) {
      return json(401, { errcode: "M_UNKNOWN_TOKEN", error: "gone", soft_logout: false });
    }
    if (path === "/_matrix/client/v3/logout") {
      live.delete(auth);
      return json(200, {});
    }
    return json(404, { errcode: "M_UNRECOGNIZED" });
  };
  return { fetch, live };
}

let n = 0;

describe("two tabs logging in at once on one IndexedDB client store", () => {
  for (const users of [
    ["alice", "bob"],
    ["alice", "alice"],
  ] as const) {
    it(`the second save is refused and its new device logged out: ${users.join(" and ")}`, async () => {
      const name = `login-shared-store-${process.pid}-${n++}`;
      const srv = server(2);
      const stores = [new IndexedDbClientStore({ name }), new IndexedDbClientStore({ name })];
      const tabs = stores.map((store) => new MatrixClient({ homeserverUrl: HS, store, fetch: srv.fetch }));
      const results = await Promise.allSettled(
        tabs.map((tab, i) => tab.login({ user: users[i] ?? "x", password: "pw" })),
      );
      const won = results.findIndex((r) => r.status === "fulfilled");
      const lost = results.findIndex((r) => r.status === "rejected");
      assert.ok(won >= 0 && lost >= 0, "one login is saved, the other refused");
      const refusal = (results[lost] as PromiseRejectedResult).reason;
      assert.ok(refusal instanceof ClientError && refusal.code === "SESSION_CONFLICT", String(refusal));
      const winner = tabs[won]!;
      const loser = tabs[lost]!;
      assert.equal(loser.isLoggedIn, false, "the refused tab is not logged in");
      assert.equal(winner.isLoggedIn, true);
      const reader = new IndexedDbClientStore({ name });
      const stored = await reader.loadSession();
      assert.equal(stored?.deviceId, winner.deviceId, "the store keeps the session saved first");
      assert.deepEqual(
        [...srv.live.values()].map((s) => s.deviceId),
        [winner.deviceId],
        "the refused login's device is logged out, the saved one's stays",
      );
      await Promise.all([...tabs.map((t) => t.close()), reader.close()]);
    });
  }

  it("a login after another tab's (not at once) replaces its session, as before", async () => {
    const name = `login-shared-store-${process.pid}-${n++}`;
    const srv = server(1);
    const stores = [new IndexedDbClientStore({ name }), new IndexedDbClientStore({ name })];
    const [tab1, tab2] = stores.map(
      (store) => new MatrixClient({ homeserverUrl: HS, store, fetch: srv.fetch }),
    );
    await tab1!.login({ user: "alice", password: "pw" });
    await tab2!.login({ user: "bob", password: "pw" });
    assert.equal((await stores[0]!.loadSession())?.userId, "@bob:hs");
    await Promise.all([tab1!.close(), tab2!.close()]);
  });

  it("checks and saves in one step: a save another tab makes as this one's begins lands wholly before or after it", async () => {
    // Both logins began on an empty store. Tab 2's save starts the moment tab 1's reaches the
    // store: read, clear and save in separate steps let both pass the check, the later one
    // replacing the other's session.
    const name = `login-shared-store-${process.pid}-${n++}`;
    const hooked = hookedFactory();
    const noCall: ApiCall = async () => {
      throw new Error("no server in this test");
    };
    const session = (userId: string, deviceId: string): StoredSession => ({
      homeserverUrl: HS,
      userId,
      deviceId,
      accessToken: `tok-${deviceId}`,
    });
    const tab1Store = new IndexedDbClientStore({ name, indexedDB: hooked.factory });
    const tab2Store = new IndexedDbClientStore({ name });
    await Promise.all([tab1Store.loadSession(), tab2Store.loadSession()]); // both connections open
    const tab1 = new Session({ call: noCall, store: tab1Store, homeserverUrl: HS });
    const tab2 = new Session({ call: noCall, store: tab2Store, homeserverUrl: HS });
    let tab2Saved: Promise<unknown> | undefined;
    hooked.onNextTransaction(() => {
      tab2Saved = tab2
        .adopt(session("@bob:hs", "BOBDEV"), true, { stored: undefined })
        .catch((e: unknown) => e);
    });
    const tab1Saved = await tab1
      .adopt(session("@alice:hs", "ALICEDEV"), true, { stored: undefined })
      .catch((e: unknown) => e);
    assert.ok(tab2Saved !== undefined, "tab 2 saved as tab 1 did");
    const outcomes = [tab1Saved, await tab2Saved];
    const refused = outcomes.filter((e) => e instanceof ClientError && e.code === "SESSION_CONFLICT");
    assert.equal(refused.length, 1, `one of the two is refused: ${outcomes.map(String).join(", ")}`);
    const kept = outcomes[0] === undefined ? "ALICEDEV" : "BOBDEV";
    assert.equal((await tab1Store.loadSession())?.deviceId, kept, "the store holds the one saved");
    await Promise.all([tab1Store.close(), tab2Store.close()]);
  });
});
