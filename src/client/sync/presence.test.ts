// Presence (`presence.events` of /sync) was parsed and dropped: an app could not show who is
// online. Each well-formed `m.presence` is emitted and kept for `getPresence`, for at most
// MAX_PRESENCE_USERS users (the server may push presence for any number of them).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  MAX_PRESENCE_STATUS_CHARS,
  MAX_PRESENCE_TEXT_CHARS,
  MAX_PRESENCE_USERS,
  type Presence,
} from "../presence.ts";
import { scriptedSyncClient } from "../test-support/scripted-sync.ts";

const presence = (sender: unknown, content: Record<string, unknown>, type = "m.presence") => ({
  type,
  sender,
  content,
});
const sync = (next: string, events: unknown[]) => JSON.stringify({ next_batch: next, presence: { events } });

async function tempPath(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "keyroom-presence-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, "client.sqlite3");
}

describe("presence from sync", () => {
  it("is emitted and kept per user; malformed events and fields are left out", async (t) => {
    const client = await scriptedSyncClient(await tempPath(t), [
      sync("s1", [
        presence("@alice:hs", {
          presence: "online",
          currently_active: true,
          last_active_ago: 12,
          status_msg: "lunch",
          displayname: "Alice",
          avatar_url: "mxc://hs/a",
        }),
        presence("@bob:hs", {
          presence: "unavailable",
          last_active_ago: -5,
          currently_active: "yes",
          displayname: "x".repeat(MAX_PRESENCE_TEXT_CHARS + 1),
          avatar_url: `mxc://hs/${"a".repeat(MAX_PRESENCE_TEXT_CHARS)}`,
          status_msg: "lone \ud800 surrogate",
        }),
        presence("@carol:hs", { presence: "dancing" }),
        presence("not-a-user", { presence: "online" }),
        presence(undefined, { presence: "online" }),
        presence("@dave:hs", { presence: "online" }, "m.other"),
      ]),
      sync("s2", [presence("@alice:hs", { presence: "offline" })]),
    ]);
    const heard: Presence[] = [];
    client.on("presence", (p) => {
      heard.push(p);
    });
    await client.syncOnce();
    assert.deepEqual(heard, [
      {
        userId: "@alice:hs",
        presence: "online",
        currentlyActive: true,
        lastActiveAgo: 12,
        statusMsg: "lunch",
        displayName: "Alice",
        avatarUrl: "mxc://hs/a",
      },
      { userId: "@bob:hs", presence: "unavailable" },
    ]);
    assert.equal(client.getPresence("@alice:hs")?.statusMsg, "lunch");
    assert.equal(client.getPresence("@carol:hs"), undefined);
    assert.equal(client.getPresence("@dave:hs"), undefined);
    // What a caller does to its copy does not change what the client keeps.
    const copy = client.getPresence("@bob:hs");
    assert.ok(copy);
    copy.presence = "online";
    assert.equal(client.getPresence("@bob:hs")?.presence, "unavailable");
    await client.syncOnce();
    assert.deepEqual(client.getPresence("@alice:hs"), { userId: "@alice:hs", presence: "offline" });
    assert.equal(heard.length, 3);
    await client.close();
  });

  it("keeps a status message past MAX_PRESENCE_STATUS_CHARS cut, ending in …, never inside a surrogate pair", async (t) => {
    const long = "y".repeat(MAX_PRESENCE_STATUS_CHARS * 40);
    // An emoji (two units) across the cut (its first half the last unit before the "…"): left out whole.
    const across = `${"z".repeat(MAX_PRESENCE_STATUS_CHARS - 2)}\u{1f600}${"z".repeat(10)}`;
    const exact = "w".repeat(MAX_PRESENCE_STATUS_CHARS);
    const client = await scriptedSyncClient(await tempPath(t), [
      sync("s1", [
        presence("@long:hs", { presence: "online", status_msg: long }),
        presence("@across:hs", { presence: "online", status_msg: across }),
        presence("@exact:hs", { presence: "online", status_msg: exact }),
      ]),
    ]);
    await client.syncOnce();
    const cut = client.getPresence("@long:hs")?.statusMsg;
    assert.equal(cut, `${"y".repeat(MAX_PRESENCE_STATUS_CHARS - 1)}…`);
    const emoji = client.getPresence("@across:hs")?.statusMsg;
    assert.equal(emoji, `${"z".repeat(MAX_PRESENCE_STATUS_CHARS - 2)}…`);
    assert.ok(emoji?.isWellFormed());
    assert.equal(client.getPresence("@exact:hs")?.statusMsg, exact);
    await client.close();
  });

  it("holds a few MB at most at its limits (each user's texts at their longest, in two-byte characters)", () => {
    // Two bytes a unit; a user ID is at most 255 units; some 500 bytes more for the object, its
    // fields and the map entry (measured with an ASCII user ID: about 2 KB a user, 4 MB in all).
    const perUser = 2 * (MAX_PRESENCE_STATUS_CHARS + 2 * MAX_PRESENCE_TEXT_CHARS + 255) + 500;
    assert.ok(MAX_PRESENCE_USERS * perUser <= 6_000_000, `${MAX_PRESENCE_USERS * perUser} bytes`);
  });

  it("is kept for at most MAX_PRESENCE_USERS users, the least recently updated forgotten first", async (t) => {
    const users = Array.from({ length: MAX_PRESENCE_USERS + 5 }, (_, i) => `@u${i}:evil`);
    const client = await scriptedSyncClient(await tempPath(t), [
      sync(
        "s1",
        users.map((u) => presence(u, { presence: "online" })),
      ),
      // u5 updated again: now the most recent, so u6 goes first.
      sync("s2", [
        presence("@u5:evil", { presence: "offline" }),
        presence("@new:evil", { presence: "online" }),
      ]),
    ]);
    await client.syncOnce();
    assert.equal(client.getPresence("@u4:evil"), undefined);
    assert.equal(client.getPresence("@u5:evil")?.presence, "online");
    assert.equal(client.getPresence(users.at(-1) ?? "")?.presence, "online");
    await client.syncOnce();
    assert.equal(client.getPresence("@u5:evil")?.presence, "offline");
    assert.equal(client.getPresence("@u6:evil"), undefined);
    assert.equal(client.getPresence("@u7:evil")?.presence, "online");
    assert.equal(client.getPresence("@new:evil")?.presence, "online");
    await client.close();
  });
});
