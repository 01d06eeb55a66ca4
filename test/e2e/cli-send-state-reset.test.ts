// `keyroom send` into an encrypted room whose m.room.encryption the server's state has lost (a
// state reset): the command first asked a client without the crypto store whether the room is
// encrypted, the server's state said no, and the message went out in plaintext. The crypto store,
// which recorded the room as encrypted, now always answers for profiles with encryption.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { accountArgs, cliAccount, runKeyroom } from "../support/cli.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

let hs: TestDevServer;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-reset-"));
  // A database file, so the test can change the server's state of a room behind its back.
  hs = await startTestDevServer({ memory: false, dbPath: join(dir, "devserver.sqlite") });
});
after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

async function keyroom(args: string[]): Promise<string> {
  const r = await runKeyroom(args);
  assert.equal(r.code, 0, `keyroom ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/**
 * A state reset, made by hand: the room's m.room.encryption becomes an event of another type, in
 * the current state and in history, so the server shows the room as never encrypted.
 */
function loseEncryptionState(roomId: string): void {
  const db = new Database(join(dir, "devserver.sqlite"));
  try {
    const renamed = "x.state_reset";
    const events = db
      .prepare(
        "UPDATE events SET type = ?, json = json_set(json, '$.type', ?) WHERE room_id = ? AND type = 'm.room.encryption'",
      )
      .run(renamed, renamed, roomId);
    const current = db
      .prepare("UPDATE current_state SET type = ? WHERE room_id = ? AND type = 'm.room.encryption'")
      .run(renamed, roomId);
    assert.deepEqual([events.changes, current.changes], [1, 1]);
  } finally {
    db.close();
  }
}

describe("keyroom send after a state reset", () => {
  test("the room the crypto store recorded as encrypted gets ciphertext, not plaintext", async () => {
    const a = cliAccount(hs, dir, "alice");
    await keyroom(accountArgs("register", hs.baseUrl, a.name, a.profile));
    const roomId = (await keyroom(["create-room", "--encrypted", "--profile", a.profile])).trim();
    await keyroom(["send", roomId, "first", "--profile", a.profile]);
    loseEncryptionState(roomId);
    const { accessToken: token } = JSON.parse(await readFile(join(a.profile, "profile.json"), "utf8")) as {
      accessToken: string;
    };
    const state = await hs.api("GET", `/rooms/${encodeURIComponent(roomId)}/state/m.room.encryption`, {
      token,
    });
    assert.equal(state.status, 404, "the server no longer shows the room's encryption");

    const eventId = (await keyroom(["send", roomId, "after the reset", "--profile", a.profile])).trim();
    const raw = await hs.api(
      "GET",
      `/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(eventId)}`,
      {
        token,
      },
    );
    assert.equal(raw.json.type, "m.room.encrypted");
    assert.ok(!JSON.stringify(raw.json).includes("after the reset"));
  });
});
