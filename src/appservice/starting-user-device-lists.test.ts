// A device-list change (MSC3202 `device_lists` of a transaction) that comes while a virtual user is
// starting must reach its client before `user()` returns: its device, restored with the device
// lists it kept, would otherwise take them as current, and share room keys with a removed device
// or miss a new one until some later change. Scripted homeserver, encryption on, the user's data
// directory in `dataDir`: it was not there when `start()` brought the others back (here: set aside
// and brought back), so the user is started by `user()` while transactions come. A transaction that
// carries only such changes is held like any other: the homeserver's retry of it, after the user
// started, is not fed to the user a second time.
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Appservice, virtualUserPaths } from "./appservice.ts";
import { MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING } from "./starting-users.ts";
import { ME, registrationOf, scripted, startingMe } from "./test-support/scripted-start.ts";
import { parseTransaction } from "./transaction.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Starts ME once (its device made, its own devices known), then starts it again, on its data
 * directory, with a new appservice while the transactions `during(as)` hands come: its start waits
 * once its client is restored. Returns how many key queries asked for ME's devices by then and
 * after `user()` returned and its devices were read.
 */
async function restartedWhile(
  id: string,
  during: (as: Appservice) => Promise<void>,
): Promise<{ before: number; after: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), "keyroom-starting-lists-"));
  const aside = `${dataDir}-aside`;
  // Its start waits once its client is restored (its device lists loaded from its crypto store).
  const hs = scripted("key-counts");
  const options = {
    registration: registrationOf(id),
    homeserverUrl: "https://hs.invalid",
    fetch: hs.fetch,
    dataDir,
    logger: quiet,
    clientOptions: { fillTimelineGaps: false },
  };
  try {
    // A first run: the device is made and knows its own user's devices (always tracked).
    const first = new Appservice(options);
    await first.start();
    hs.release();
    const before = await first.user(ME, { deviceId: "DEV" });
    await before.getUserDevices(ME);
    await first.close();

    const dir = virtualUserPaths(dataDir, ME).dir;
    renameSync(dir, aside);
    hs.rearm();
    const as = new Appservice(options);
    try {
      await as.start();
      renameSync(aside, dir);
      const starting = as.user(ME);
      await hs.paused();
      const asked = hs.queriesFor(ME);
      await during(as);
      hs.release();
      const client = await starting;
      await client.getUserDevices(ME);
      return { before: asked, after: hs.queriesFor(ME) };
    } finally {
      hs.release();
      await as.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(aside, { recursive: true, force: true });
  }
}

describe("device-list changes that come while a virtual user starts", () => {
  it("reach its restored device before user() returns: the changed list is asked for again", async () => {
    const { before, after } = await restartedWhile("lists", async (as) => {
      // Another device of the user came (or went) meanwhile.
      await as.handleTransaction("t1", parseTransaction({ events: [], device_lists: { changed: [ME] } }));
    });
    assert.ok(after > before, "its own devices asked for again: the change was not missed");
  });

  it("past MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING users, make every tracked list outdated: none is missed", async () => {
    const others = Array.from({ length: MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING }, (_, i) => `@u${i}:hs`);
    const { before, after } = await restartedWhile("lists-overflow", async (as) => {
      await as.handleTransaction("t1", parseTransaction({ events: [], device_lists: { changed: others } }));
      // The user's own change comes past the bound.
      await as.handleTransaction("t2", parseTransaction({ events: [], device_lists: { changed: [ME] } }));
    });
    assert.ok(after > before, "its own devices asked for again: the change past the bound was not missed");
  });

  it("count as held: the homeserver's retry of a transaction of changes only is not fed again once started", async () => {
    const hs = scripted();
    let failOnce = true;
    const { as, starting } = await startingMe(hs, registrationOf("lists-retry"), {
      logger: quiet,
      // The first attempt fails after the users' shares (as when another user's share fails): the
      // homeserver sends it again, by then to a started user.
      onTransaction: (_txn, txnId) => {
        if (txnId !== "t1" || !failOnce) return;
        failOnce = false;
        throw new Error("not handled this time");
      },
    });
    try {
      const t1 = parseTransaction({ events: [], device_lists: { changed: [ME] } });
      await assert.rejects(as.handleTransaction("t1", t1), /not handled this time/);
      hs.release();
      const client = await starting;
      await client.getUserDevices(ME);
      const asked = hs.queriesFor(ME);
      assert.equal(await as.handleTransaction("t1", t1), true);
      await client.getUserDevices(ME);
      assert.equal(hs.queriesFor(ME), asked, "its change was had once: its devices not asked for again");
    } finally {
      hs.release();
      await as.close();
    }
  });
});
