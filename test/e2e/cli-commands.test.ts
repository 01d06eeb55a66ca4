// The `keyroom` CLI end to end: each step spawns the real command line (through tsx) against one
// in-memory devserver started here. Independent flows run concurrently to keep the file short.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runDemo } from "../../src/cli/demo.ts";
import {
  accountArgs,
  cliAccount,
  jsonLines,
  runKeyroom,
  spawnKeyroom,
  startKeyroom,
} from "../support/cli.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

async function inProcess(args: string[]): Promise<string> {
  const r = await runKeyroom(args);
  assert.equal(r.code, 0, `keyroom ${args.join(" ")} (in-process) exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Runs and expects exit 0, with a readable failure otherwise. */
async function ok(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await spawnKeyroom(args, env);
  assert.equal(r.code, 0, `keyroom ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Expects failure: a non-zero status and exactly one `keyroom: ...` line on stderr. */
async function fails(args: string[], code: number, pattern: RegExp): Promise<string> {
  const r = await spawnKeyroom(args);
  assert.equal(r.code, code, `keyroom ${args.join(" ")}: expected exit ${code}, got ${r.code} (${r.stderr})`);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `one error line expected, got: ${r.stderr}`);
  assert.match(lines[0] ?? "", /^keyroom: /);
  assert.match(lines[0] ?? "", pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  return lines[0] ?? "";
}

const ROOM_ID = /^![^\s]+:[^\s]+\n$/;
const EVENT_ID = /^\$[^\s]+\n$/;

let hs: TestDevServer;
let dir: string;
/** A fresh user name and profile directory. */
const account = (prefix: string) => cliAccount(hs, dir, prefix);

before(async () => {
  hs = await startTestDevServer();
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-"));
});
after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

const register = (a: { name: string; profile: string }, run = inProcess) =>
  run(["register", "--homeserver", hs.baseUrl, "--user", a.name, "--password", "pw", "--profile", a.profile]);

describe("keyroom CLI", { concurrency: true }, () => {
  test("register, login again (same device), whoami, profile file 0600 without printing the token", async () => {
    const a = account("alice");
    const reg = jsonLines(await register(a, ok));
    assert.equal(reg[0]?.user_id, a.userId);
    const deviceId = reg[0]?.device_id;
    assert.equal(typeof deviceId, "string");

    const file = join(a.profile, "profile.json");
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const saved = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    assert.equal(saved.userId, a.userId);
    assert.equal(saved.deviceId, deviceId);
    assert.equal(saved.homeserverUrl, hs.baseUrl);
    assert.equal(typeof saved.storeDir, "string");
    const token = saved.accessToken;
    assert.ok(typeof token === "string" && token.length > 0);

    // Login again by localpart, through $KEYROOM_PROFILE and $KEYROOM_PASSWORD: the device is reused.
    const again = await ok(["login", "--homeserver", hs.baseUrl, "--user", a.name], {
      KEYROOM_PROFILE: a.profile,
      KEYROOM_PASSWORD: "pw",
    });
    assert.equal(jsonLines(again)[0]?.device_id, deviceId);
    const newToken = (JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>).accessToken;
    const who = await ok(["whoami", "--profile", a.profile]);
    assert.equal(jsonLines(who)[0]?.user_id, a.userId);
    assert.equal(jsonLines(who)[0]?.device_id, deviceId);
    for (const out of [JSON.stringify(reg), again, who]) {
      assert.ok(
        !out.includes(token) && typeof newToken === "string" && !out.includes(newToken),
        "token printed",
      );
    }

    // An explicit --device-id wins over the profile's.
    const other = await inProcess([
      "login",
      "--homeserver",
      hs.baseUrl,
      "--user",
      a.userId,
      "--password",
      "pw",
      "--device-id",
      "CLIDEV",
      "--profile",
      a.profile,
    ]);
    assert.equal(jsonLines(other)[0]?.device_id, "CLIDEV");

    // logout: the token dies server-side, the profile goes, the stores stay unless --purge.
    const last = JSON.parse(await readFile(file, "utf8")) as { accessToken: string; storeDir: string };
    const out = jsonLines(await ok(["logout", "--profile", a.profile]));
    assert.deepEqual(out[0], { user_id: a.userId, device_id: "CLIDEV", stores_kept: last.storeDir });
    assert.equal((await hs.api("GET", "/account/whoami", { token: last.accessToken })).status, 401);
    await assert.rejects(stat(file), /ENOENT/);
    await stat(last.storeDir);
    await fails(["whoami", "--profile", a.profile], 1, /no profile in/);
  });

  test("create-room, join, send text/notice/html/file, rooms, tail --limit and --timeout", async () => {
    const a = account("ann");
    const b = account("bob");
    const c = account("cid");
    await Promise.all([register(a), register(b), register(c)]);
    // --invite is repeatable.
    const created = await ok([
      "create-room",
      "--name",
      "CLI room",
      "--invite",
      b.userId,
      "--invite",
      c.userId,
      "--profile",
      a.profile,
    ]);
    assert.match(created, ROOM_ID);
    const roomId = created.trim();
    assert.equal(await ok(["join", roomId, "--profile", b.profile]), `${roomId}\n`);
    assert.equal(await inProcess(["join", roomId, "--profile", c.profile]), `${roomId}\n`);

    const rooms = jsonLines(await ok(["rooms", "--profile", a.profile]));
    assert.deepEqual(
      rooms.find((r) => r.room_id === roomId),
      { room_id: roomId, name: "CLI room", encrypted: false, members: [a.userId, b.userId, c.userId].sort() },
      JSON.stringify(rooms),
    );

    const file = join(dir, `${a.name}-notes.txt`);
    await writeFile(file, "file contents\n");
    const ids: string[] = [];
    for (const args of [
      ["send", roomId, "plain hello"],
      ["send", roomId, "a notice", "--notice"],
      ["send", roomId, "<b>bold</b> text", "--html"],
      ["send", roomId, "--file", file],
    ]) {
      const out = await ok([...args, "--profile", a.profile]);
      assert.match(out, EVENT_ID);
      ids.push(out.trim());
    }

    // Bob's position was set at register, so all four are new to him.
    const lines = jsonLines(
      await ok(["tail", roomId, "--limit", "4", "--timeout", "60", "--profile", b.profile]),
    );
    assert.deepEqual(
      lines.map((l) => l.event_id),
      ids,
    );
    for (const l of lines) {
      assert.equal(l.room_id, roomId);
      assert.equal(l.sender, a.userId);
      assert.equal(l.type, "m.room.message");
      assert.equal(l.encrypted, false);
      assert.equal("decrypted" in l, false);
    }
    assert.deepEqual(
      lines.map((l) => [l.msgtype, l.body]),
      [
        ["m.text", "plain hello"],
        ["m.notice", "a notice"],
        ["m.text", "bold text"],
        ["m.file", `${a.name}-notes.txt`],
      ],
    );
    assert.equal(lines[2]?.formatted_body, "<b>bold</b> text");
    const mxc = String(lines[3]?.url);
    assert.match(mxc, /^mxc:\/\//);
    const media = await fetch(
      `${hs.baseUrl}/_matrix/client/v1/media/download/${mxc.slice("mxc://".length)}`,
      {
        headers: {
          Authorization: `Bearer ${(JSON.parse(await readFile(join(b.profile, "profile.json"), "utf8")) as { accessToken: string }).accessToken}`,
        },
      },
    );
    assert.equal(await media.text(), "file contents\n");

    // Nothing new since: --timeout ends it with status 0 and no output.
    const quiet = await spawnKeyroom(["tail", "--timeout", "0.5", "--profile", b.profile]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stdout, "");

    // A message that arrives while no tail runs is printed by the next one.
    const later = (await inProcess(["send", roomId, "while away", "--profile", a.profile])).trim();
    const next = jsonLines(
      await inProcess(["tail", "--limit", "1", "--timeout", "60", "--profile", b.profile]),
    );
    assert.deepEqual(
      next.map((l) => [l.event_id, l.body]),
      [[later, "while away"]],
    );
  });

  test("invite and leave; server errors are one stderr line with the errcode", async () => {
    const a = account("inv");
    const b = account("guest");
    await register(a);
    await register(b);
    const roomId = (await inProcess(["create-room", "--profile", a.profile])).trim();
    assert.equal(await ok(["invite", roomId, b.userId, "--profile", a.profile]), "");
    await inProcess(["join", roomId, "--profile", b.profile]);
    const members = jsonLines(await inProcess(["rooms", "--profile", a.profile])).find(
      (r) => r.room_id === roomId,
    )?.members;
    assert.deepEqual(members, [a.userId, b.userId].sort());
    assert.equal(await ok(["leave", roomId, "--profile", b.profile]), "");
    const bRooms = jsonLines(await inProcess(["rooms", "--profile", b.profile]));
    assert.equal(
      bRooms.some((r) => r.room_id === roomId),
      false,
    );

    // Bob left: the server refuses his send.
    await fails(["send", roomId, "still here?", "--profile", b.profile], 1, /M_FORBIDDEN \(HTTP 403\)/);
    // ... and `tail ROOM` of a room he is not in fails at once (it waited, silent, then exited 0).
    for (const room of [roomId, `!nosuchroom:${hs.serverName}`]) {
      const tail = await runKeyroom(["tail", room, "--timeout", "0.5", "--profile", b.profile]);
      assert.equal(tail.code, 1, `tail ${room}: ${tail.stderr}`);
      assert.match(tail.stderr, /^keyroom: not joined to .*keyroom join/);
      assert.equal(tail.stderr.split("\n").length, 2, tail.stderr);
      assert.equal(tail.stdout, "");
    }
    await fails(
      ["login", "--homeserver", hs.baseUrl, "--user", b.name, "--password", "wrong", "--profile", b.profile],
      1,
      /M_FORBIDDEN/,
    );
  });

  test("encrypted room: send encrypts, tail decrypts and reports the sender device's trust", async () => {
    const a = account("enca");
    const b = account("encb");
    await register(a);
    await register(b);
    const roomId = (
      await inProcess(["create-room", "--encrypted", "--invite", b.userId, "--profile", a.profile])
    ).trim();
    await inProcess(["join", roomId, "--profile", b.profile]);
    const rooms = jsonLines(await inProcess(["rooms", "--profile", a.profile]));
    assert.equal(rooms.find((r) => r.room_id === roomId)?.encrypted, true);
    const eventId = (await inProcess(["send", roomId, "secret words", "--profile", a.profile])).trim();
    // The server only ever saw ciphertext.
    const token = (
      JSON.parse(await readFile(join(b.profile, "profile.json"), "utf8")) as { accessToken: string }
    ).accessToken;
    const raw = await hs.api(
      "GET",
      `/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(eventId)}`,
      { token },
    );
    assert.equal(raw.json.type, "m.room.encrypted");
    assert.ok(!JSON.stringify(raw.json).includes("secret words"));
    const [line] = jsonLines(
      await ok(["tail", roomId, "--limit", "1", "--timeout", "60", "--profile", b.profile]),
    );
    assert.equal(line?.event_id, eventId);
    assert.equal(line?.type, "m.room.message");
    assert.equal(line?.body, "secret words");
    assert.equal(line?.encrypted, true);
    assert.equal(line?.decrypted, true);
    // Nobody verified Alice's device, but it is known: Bob fetches her keys before judging it.
    assert.equal(line?.trust, "unverified");
  });

  test("devices list, rename and delete (password-confirmed; not this device)", async () => {
    const a = account("devs");
    await register(a);
    const other = { ...a, profile: `${a.profile}-other` };
    await inProcess(accountArgs("login", hs.baseUrl, a.name, other.profile));
    const listed = jsonLines(await ok(["devices", "list", "--profile", a.profile]));
    assert.equal(listed.length, 2);
    const me = listed.find((d) => d.current === true);
    const theirs = listed.find((d) => d.current === false);
    assert.ok(me && theirs);
    assert.equal(me.trust, "own");
    assert.equal(theirs.trust, "unset");
    assert.equal(typeof theirs.ed25519, "string");
    const id = String(theirs.device_id);
    await inProcess(["devices", "rename", id, "old phone", "--profile", a.profile]);
    const renamed = jsonLines(await inProcess(["devices", "list", "--profile", a.profile]));
    assert.equal(renamed.find((d) => d.device_id === id)?.display_name, "old phone");
    await fails(
      ["devices", "delete", String(me.device_id), "--password", "pw", "--profile", a.profile],
      1,
      /logout/,
    );
    await fails(["devices", "delete", id, "--password", "nope", "--profile", a.profile], 1, /M_FORBIDDEN/);
    await ok(["devices", "delete", id, "--profile", a.profile], { KEYROOM_PASSWORD: "pw" });
    const left = jsonLines(await inProcess(["devices", "list", "--profile", a.profile]));
    assert.deepEqual(
      left.map((d) => d.device_id),
      [me.device_id],
    );
  });

  test("devices list on a profile with encryption off: every device, ed25519 and trust null", async () => {
    const a = account("plaindevs");
    await inProcess([
      ...["register", "--homeserver", hs.baseUrl, "--user", a.name, "--password", "pw"],
      ...["--no-encryption", "--profile", a.profile],
    ]);
    const r = await runKeyroom(["devices", "list", "--profile", a.profile]);
    assert.equal(r.code, 0, r.stderr);
    const listed = jsonLines(r.stdout);
    assert.equal(listed.length, 1);
    assert.equal(listed[0]?.current, true);
    assert.equal(listed[0]?.ed25519, null);
    assert.equal(listed[0]?.trust, null);
  });

  test("local errors: one line on stderr, status 1 (failure) or 2 (usage)", async () => {
    await fails(["whoami", "--profile", join(dir, "no-such-profile")], 1, /no profile in .*keyroom login/);
    await fails(["bogus-command"], 2, /unknown command 'bogus-command'/);
    await fails(["tail", "--limit", "0"], 2, /--limit must be a whole number from 1/);
    const corrupt = join(dir, "corrupt");
    await mkdir(corrupt);
    await writeFile(join(corrupt, "profile.json"), "{ not json");
    await fails(["rooms", "--profile", corrupt], 1, /profile .* is not JSON/);
  });

  test("devserver prints its URL, serves, and closes cleanly on SIGTERM", async () => {
    const child = startKeyroom(["devserver", "--port", "0", "--memory", "--server-name", "cli.test"]);
    child.stdin.end();
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        if (out.includes("\n")) resolve(out.trim());
      });
      child.on("close", () => reject(new Error(`devserver exited early: ${stderr}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const versions = (await (await fetch(`${url}/_matrix/client/versions`)).json()) as { versions: string[] };
    assert.ok(versions.versions.length > 0);
    // --server-name is the server part of its user IDs.
    const registered = (await (
      await fetch(`${url}/_matrix/client/v3/register`, {
        method: "POST",
        body: JSON.stringify({ username: "named", password: "pw", auth: { type: "m.login.dummy" } }),
      })
    ).json()) as { user_id: string };
    assert.equal(registered.user_id, "@named:cli.test");
    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
  });

  test("tail without --limit prints messages as they arrive and exits 0 on SIGINT", async () => {
    const a = account("live");
    const b = account("watch");
    await register(a);
    await register(b);
    const roomId = (await inProcess(["create-room", "--invite", b.userId, "--profile", a.profile])).trim();
    await inProcess(["join", roomId, "--profile", b.profile]);
    const child = startKeyroom(["tail", "--profile", b.profile]);
    child.stdin.end();
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    let out = "";
    const firstLine = new Promise<string>((resolve, reject) => {
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        if (out.includes("\n")) resolve(out);
      });
      child.on("close", () => reject(new Error(`tail exited early: ${stderr}`)));
    });
    // Sent after the tail started or before its first sync: either way it is new to Bob's profile.
    const eventId = (await inProcess(["send", roomId, "live one", "--profile", a.profile])).trim();
    const [line] = jsonLines(await firstLine);
    assert.equal(line?.event_id, eventId);
    assert.equal(line?.body, "live one");

    // Bob's tail shares his stores: commands beside it work, plaintext or encrypted.
    assert.match(await inProcess(["send", roomId, "from bob meanwhile", "--profile", b.profile]), EVENT_ID);
    assert.match(
      await inProcess(["rooms", "--profile", b.profile]),
      new RegExp(roomId.replace(/[$!.]/g, "\\$&")),
    );
    const secret = (
      await inProcess(["create-room", "--encrypted", "--invite", b.userId, "--profile", a.profile])
    ).trim();
    await inProcess(["join", secret, "--profile", b.profile]);
    // Two encrypted sends from Bob's profile at once, in processes of their own, beside his tail:
    // they take turns on the crypto store's lease, and the tail decrypts both.
    const sends = await Promise.all(
      ["bob one", "bob two"].map((text) => spawnKeyroom(["send", secret, text, "--profile", b.profile])),
    );
    for (const run of sends) {
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, EVENT_ID);
    }
    const sent = sends.map((run) => run.stdout.trim());
    // Waits on the tail's output, not on a clock.
    while (!sent.every((id) => out.includes(id))) {
      await new Promise((resolve, reject) => {
        child.stdout.once("data", resolve);
        child.once("close", () => reject(new Error(`tail exited: ${stderr}`)));
      });
    }
    const seen = jsonLines(out).filter((l) => sent.includes(String(l.event_id)));
    assert.deepEqual(seen.map((l) => l.body).sort(), ["bob one", "bob two"]);
    assert.ok(seen.every((l) => l.encrypted === true && l.decrypted === true));
    // And Alice reads them.
    const aliceSees = jsonLines(await inProcess(["tail", secret, "--limit", "2", "--profile", a.profile]));
    assert.deepEqual(aliceSees.map((l) => l.body).sort(), ["bob one", "bob two"]);

    child.kill("SIGINT");
    assert.equal(await exited, 0, stderr);
    assert.equal(stderr, "");
  });

  test("runDemo without encryption: a plaintext conversation and the history after a restart", async () => {
    const lines: string[] = [];
    const result = await runDemo({ encryption: false, log: (l) => lines.push(l) });
    assert.match(result.roomId, /^!/);
    assert.equal(result.seen.bob.length, 3);
    assert.deepEqual(result.seen.alice, result.seen.bob);
    assert.deepEqual(result.seen.bobAfterRestart, result.seen.bob);
    assert.ok(
      result.seen.bob.every((l) => l.endsWith("(plaintext)")),
      lines.join("\n"),
    );
  });

  test("demo runs to completion: an encrypted conversation, a restart, history still readable", async () => {
    const out = await ok(["demo"]);
    assert.match(out, /alice created an encrypted room/);
    assert.match(
      out,
      /bob sees {2}@alice:localhost: "Hello Bob! Can you read this\?" \(encrypted, decrypted/,
    );
    const history = out.slice(out.indexOf("bob reads the room history:"));
    assert.equal((history.match(/encrypted, decrypted/g) ?? []).length, 3, out);
    assert.doesNotMatch(out, /NOT decrypted/);
    assert.match(out, /bob received a Megolm room key \(session .*\) from @alice:localhost over Olm/);
    assert.match(out, /bob marks alice's device as verified/);
    // Verified before the restart: the history shows Alice's messages from a verified device.
    assert.equal((history.match(/@alice:localhost: .*trust: verified\)/g) ?? []).length, 2, out);
  });
});
