// MSC3202: a transaction leaves out the one-time key counts of devices whose counts did not change.
// For a virtual user that means "as before", not "zero" (which `/sync` means by leaving the field
// out, spec v1.17): read as zero, every transaction would make the device upload a needless batch.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { FetchLike } from "../client/transport.ts";
import type { AppserviceToDevice } from "../wire/appservice.ts";
import { Appservice } from "./appservice.ts";
import type { Transaction } from "./transaction.ts";

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** A transaction with one to-device message for the user (so that it concerns the user). */
const txn = (oneTimeKeyCounts: Transaction["oneTimeKeyCounts"]): Transaction => {
  const dummy: AppserviceToDevice = {
    type: "m.dummy",
    sender: "@peer:hs",
    to_user_id: "@me:hs",
    to_device_id: "DEV",
    content: {},
  };
  return {
    events: [],
    ephemeral: [],
    toDevice: [dummy],
    deviceLists: undefined,
    oneTimeKeyCounts,
    unusedFallbackKeyTypes: {},
  };
};

describe("one-time key counts an appservice transaction leaves out", () => {
  it("are unchanged: no keys are uploaded until a transaction says the count fell", async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), "keyroom-as-otk-"));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    /** The server's unclaimed one-time keys of the device, and the size of each upload of them. */
    let held = 0;
    const uploads: number[] = [];
    const homeserver: FetchLike = async (url, init) => {
      const p = new URL(url).pathname;
      if (p.endsWith("/account/whoami")) return json({ user_id: "@bot:hs" });
      if (p.endsWith("/register")) return json({ errcode: "M_USER_IN_USE", error: "in use" }, 400);
      if ((init.method ?? "GET") === "PUT" && p.includes("/devices/")) return json({});
      if (p.endsWith("/keys/upload")) {
        const body = JSON.parse(String(init.body)) as { one_time_keys?: Record<string, unknown> };
        const n = Object.keys(body.one_time_keys ?? {}).length;
        if (n > 0) uploads.push(n);
        held += n;
        return json({ one_time_key_counts: { signed_curve25519: held } });
      }
      if (p.endsWith("/keys/query")) return json({ device_keys: {}, failures: {} });
      if (p.endsWith("/joined_rooms")) return json({ joined_rooms: [] });
      if (p.endsWith("/sync")) return json({ next_batch: "s" });
      return json({ errcode: "M_NOT_FOUND", error: "not here" }, 404);
    };
    const as = new Appservice({
      registration: {
        id: "otk",
        url: null,
        as_token: "as_token_otk",
        hs_token: "hs_token_otk",
        sender_localpart: "bot",
        namespaces: { users: [{ exclusive: true, regex: "@me:hs" }] },
      },
      homeserverUrl: "https://hs.invalid",
      dataDir,
      fetch: homeserver,
      clientOptions: { fillTimelineGaps: false },
    });
    await as.start();
    t.after(() => as.close());
    await as.user("@me:hs", { deviceId: "DEV" });
    assert.deepEqual(uploads, [50]);

    await as.handleTransaction("t1", txn({}));
    await as.handleTransaction("t2", txn({ "@me:hs": {} }));
    assert.deepEqual(uploads, [50], "counts left out: unchanged");

    held = 0;
    await as.handleTransaction("t3", txn({ "@me:hs": { DEV: { signed_curve25519: 0 } } }));
    assert.deepEqual(uploads, [50, 50], "a count that fell: keys topped up");
  });
});
