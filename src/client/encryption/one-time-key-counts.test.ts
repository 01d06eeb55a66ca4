// A server may leave `device_one_time_keys_count` out of `/sync` when every count is zero (spec
// v1.17). Read as "unknown", a device whose keys were all claimed on such a server kept the count
// its last upload reported and never uploaded more: peers fell back to its fallback key, then to
// nothing. The sync loop now reads the absence as zero. A response fed through `feedSync` (an
// appservice's transactions, MSC3202, which leave out counts that did not change) still leaves
// the count as it was.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { SCRIPTED_SESSION, tempSqliteClientStore } from "../test-support/scripted-sync.ts";

describe("one-time key counts left out of a sync response", () => {
  it("mean zero from /sync (keys are uploaded), and unchanged from feedSync", async (t) => {
    const { dir, store } = await tempSqliteClientStore(t, "keyroom-otk-counts-");
    /** The server's unclaimed one-time keys of our device, and the size of each upload of them. */
    let held = 0;
    const uploads: number[] = [];
    const syncs: string[] = [];
    const client = new MatrixClient({
      homeserverUrl: SCRIPTED_SESSION.homeserverUrl,
      store,
      fillTimelineGaps: false,
      encryption: { store: { directory: dir } },
      fetch: async (url, init) => {
        const path = new URL(url).pathname;
        if (path.endsWith("/sync")) {
          const body: { next_batch: string; device_one_time_keys_count?: Record<string, number> } = {
            next_batch: `s${syncs.length + 1}`,
          };
          // Like the servers in question: the field only when some count is not zero.
          if (held > 0) body.device_one_time_keys_count = { signed_curve25519: held };
          syncs.push(body.next_batch);
          return Response.json(body);
        }
        if (path.endsWith("/keys/upload")) {
          const body = JSON.parse(String(init?.body)) as { one_time_keys?: Record<string, unknown> };
          const n = Object.keys(body.one_time_keys ?? {}).length;
          if (n > 0) uploads.push(n);
          held += n;
          return Response.json({ one_time_key_counts: { signed_curve25519: held } });
        }
        if (path.endsWith("/keys/query")) return Response.json({ device_keys: {}, failures: {} });
        return Response.json({ errcode: "M_NOT_FOUND" }, { status: 404 });
      },
    });
    t.after(() => client.close());
    await client.restore();
    await client.syncOnce({ timeoutMs: 0 });
    assert.deepEqual(uploads, [50], "the first keys");
    assert.equal(held, 50);

    // Peers claim every key: the server now leaves the count out.
    held = 0;
    await client.syncOnce({ timeoutMs: 0 });
    assert.deepEqual(uploads, [50, 50], "a sync without the count tops the keys up again");
    assert.equal(held, 50);

    // An appservice's transaction without counts: they did not change (the next one that changes
    // them carries them), so nothing is uploaded; with a count of zero, keys are.
    held = 0;
    await client.feedSync({ next_batch: "t1" });
    assert.deepEqual(uploads, [50, 50], "a fed response without the count leaves it as it was");
    await client.feedSync({ next_batch: "t2", device_one_time_keys_count: { signed_curve25519: 0 } });
    assert.deepEqual(uploads, [50, 50, 50]);
  });
});
