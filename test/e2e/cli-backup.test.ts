// `keyroom backup status`, `backup restore --key` and `history` spawned against the devserver: a
// new CLI device of a user whose other device backed up its keys reads the room's history, the
// exact JSON lines of the issue 12 contract.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { runCli } from "../../src/cli/program.ts";
import { CLIENT_STORE_FILE } from "../../src/cli/session.ts";
import { FileClientStore } from "../../src/index.ts";
import { runOk, spawnKeyroom, spawnOk } from "../support/cli.ts";
import {
  devServerFixture,
  fixtureUser,
  sharedRoom,
  syncAll,
  type TestClient,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-cli-backup-");

/** Logs `t`'s user into a new CLI device at `profile`. */
async function cliLogin(t: TestClient, profile: string): Promise<void> {
  await runOk([
    "login",
    "--homeserver",
    fx.hs.baseUrl,
    "--user",
    t.client.userId,
    "--password",
    "pw",
    "--profile",
    profile,
  ]);
}

/** The sync position saved in the CLI profile's client store. */
async function savedPosition(profile: string): Promise<string | undefined> {
  const { storeDir } = JSON.parse(await readFile(join(profile, "profile.json"), "utf8")) as {
    storeDir: string;
  };
  const store = new FileClientStore(join(storeDir, CLIENT_STORE_FILE));
  return (await store.loadSync())?.nextBatch;
}

describe("keyroom backup / history", () => {
  test("history syncs first: a room key waiting in a to-device message decrypts the new message", async () => {
    const alice = await fixtureUser(fx, "clihs-alice");
    const bob = await fixtureUser(fx, "clihs-bob");
    const roomId = await sharedRoom(bob, [alice]);
    const profile = join(fx.dir, "alice-cli-sync");
    await cliLogin(alice, profile);
    const before = await savedPosition(profile);
    // Bob learns of the new device, then writes: the room key goes to it as a to-device message
    // (no backup anywhere), which only a sync of that device can read.
    await syncAll(bob);
    const eventId = await bob.client.sendText(roomId, "after your login");

    const [line] = await spawnOk(["history", roomId, "--limit", "1", "--profile", profile]);
    assert.deepEqual(
      [line?.event_id, line?.body, line?.decrypted, line?.error],
      [eventId, "after your login", true, undefined],
    );
    // The catch-up sync's position is not saved: that is `tail`'s (see the next test).
    assert.equal(await savedPosition(profile), before);
  });

  test("history does not move tail's position: a message in another room is printed by the next tail", async () => {
    const alice = await fixtureUser(fx, "clihb-alice");
    const bob = await fixtureUser(fx, "clihb-bob");
    const roomA = await sharedRoom(bob, [alice]);
    const roomB = await sharedRoom(bob, [alice]);
    const profile = join(fx.dir, "alice-cli-tail");
    await cliLogin(alice, profile);
    await syncAll(bob);
    // Its room key goes to the CLI device as a to-device message, which history's sync reads.
    const eventId = await bob.client.sendText(roomB, "in room B");

    await spawnOk(["history", roomA, "--limit", "1", "--profile", profile]);
    // --timeout only ends a run that would never print: the message ends it (--limit 1).
    const lines = await spawnOk(["tail", "--limit", "1", "--timeout", "60", "--profile", profile]);
    assert.deepEqual(
      lines.map((l) => [l.room_id, l.event_id, l.body, l.decrypted]),
      [[roomB, eventId, "in room B", true]],
    );
  });

  test("a new CLI device restores with --key, reports status, and reads history (backup consulted)", async () => {
    const alice = await fixtureUser(fx, "clibk-alice");
    const bob = await fixtureUser(fx, "clibk-bob");
    const roomId = await sharedRoom(bob, [alice]);
    for (const body of ["m1", "m2", "m3"]) await bob.client.sendText(roomId, body);
    await syncAll(alice);
    const { recoveryKey, version } = await alice.client.crypto.backup.createVersion();
    await alice.client.crypto.backup.idle();

    const profile = join(fx.dir, "alice-cli");
    await runOk([
      "login",
      "--homeserver",
      fx.hs.baseUrl,
      "--user",
      alice.client.userId,
      "--password",
      "pw",
      "--profile",
      profile,
    ]);
    // No backup key yet: the history stays encrypted, and restore says what to do.
    const locked = await spawnOk(["history", roomId, "--limit", "2", "--profile", profile]);
    assert.deepEqual(
      locked.map((l) => [l.type, l.decrypted, l.error]),
      [
        ["m.room.encrypted", false, "UNKNOWN_SESSION"],
        ["m.room.encrypted", false, "UNKNOWN_SESSION"],
      ],
    );
    const refused = await spawnKeyroom(["backup", "restore", "--profile", profile]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--key/);

    const restored = await spawnOk(["backup", "restore", "--key", recoveryKey, "--profile", profile]);
    assert.equal(restored.length, 1);
    const summary = restored[0] as Record<string, unknown>;
    assert.deepEqual(Object.keys(summary), ["version", "imported", "total", "failed"]);
    assert.equal(summary.version, version);
    assert.equal(summary.failed, 0);
    assert.ok((summary.total as number) >= 1);
    assert.equal(summary.imported, summary.total);

    // On a terminal: a progress bar on stderr, the same summary on stdout (the key is in the store now).
    let stdout = "";
    let stderr = "";
    // Only ROOM (the one room the keys are in, so the counts are those of the whole backup).
    const code = await runCli(["backup", "restore", roomId, "--profile", profile], {
      out: (t) => (stdout += t),
      err: (t) => (stderr += t),
      interactive: true,
    });
    assert.equal(code, 0, stderr);
    assert.match(stderr, /\rrestoring \[#{30}\] 100% \d+\/\d+ keys\n$/);
    assert.deepEqual(JSON.parse(stdout), { ...summary, imported: 0 });

    const [status] = await spawnOk(["backup", "status", "--profile", profile]);
    assert.deepEqual(status, { version, trusted: true, backed_up: summary.total, total: summary.total });

    const history = await spawnOk(["history", roomId, "--limit", "2", "--profile", profile]);
    assert.deepEqual(
      history.map((l) => [l.sender, l.body, l.encrypted, l.decrypted]),
      [
        [bob.client.userId, "m2", true, true],
        [bob.client.userId, "m3", true, true],
      ],
    );

    // A key Bob never sent to the CLI device (he has not synced since it logged in): found in the
    // backup on demand.
    await bob.client.crypto.machine.discardRoomKey(roomId);
    await bob.client.sendText(roomId, "m4");
    await syncAll(alice);
    await alice.client.crypto.backup.idle();
    const latest = await spawnOk(["history", roomId, "--limit", "1", "--profile", profile]);
    assert.deepEqual(
      latest.map((l) => [l.body, l.decrypted]),
      [["m4", true]],
    );
  });
});
