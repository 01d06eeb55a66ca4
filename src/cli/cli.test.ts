// In-process tests of the CLI's pieces: argument parsing, help and usage errors through `runCli`,
// the profile file, and the output records. The spawned end-to-end test is test/e2e/cli-commands.
import assert from "node:assert/strict";
import { lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MatrixError, NetworkError, type RoomEvent } from "../index.ts";
import { parseHomeserver, parseInteger, parseSeconds } from "./args.ts";
import { contentTypeFor, type SendArgs, validateSendArgs } from "./commands/send.ts";
import { drawSas } from "./commands/verify.ts";
import { CliError } from "./errors.ts";
import { errorMessage, isMessageEvent, jsonLine, messageLine } from "./output.ts";
import {
  accountStoreDir,
  type Profile,
  publicProfile,
  readProfile,
  requireProfile,
  resolveProfileDir,
  writeProfile,
} from "./profile.ts";
import { runCli } from "./program.ts";

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(args, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-unit-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("runCli", () => {
  test("--help on the program and on every command exits 0 with usage on stdout", async () => {
    const top = await run(["--help"]);
    assert.equal(top.code, 0);
    const commands = [
      "login",
      "register",
      "logout",
      "whoami",
      "rooms",
      "create-room",
      "join",
      "invite",
      "leave",
      "send",
      "tail",
      "devserver",
      "demo",
    ];
    for (const cmd of commands) assert.match(top.out, new RegExp(`\\n  ${cmd}\\b`));
    for (const cmd of commands) {
      const r = await run([cmd, "--help"]);
      assert.equal(r.code, 0, cmd);
      assert.match(r.out, new RegExp(`^Usage: keyroom ${cmd}`));
      assert.equal(r.err, "");
      if (cmd !== "devserver" && cmd !== "demo") assert.match(r.out, /--profile <dir>/);
    }
    // `--profile DIR` on every command that uses a profile (issue 4), the later ones included.
    for (const cmd of [
      "devices list",
      "devices rename",
      "devices delete",
      "identity status",
      "identity bootstrap",
      "trust",
      "backup status",
      "backup restore",
      "history",
      "recovery enable",
      "recovery recover",
      "recovery status",
      "recovery reset",
      "recovery change-key",
      "verify request",
      "verify listen",
      "verify qr show",
      "verify qr scan",
    ]) {
      const r = await run([...cmd.split(" "), "--help"]);
      assert.equal(r.code, 0, cmd);
      assert.match(r.out, new RegExp(`^Usage: keyroom ${cmd}`));
      assert.match(r.out, /--profile <dir>/, cmd);
    }
  });

  test("usage errors: status 2 and one `keyroom: ` line (plus the help hint)", async () => {
    const cases: [string[], RegExp][] = [
      [["login", "--user", "a", "--password", "p"], /required option '--homeserver <url>' not specified/],
      [
        ["login", "--homeserver", "not a url", "--user", "a", "--password", "p"],
        /--homeserver must be a URL/,
      ],
      [["login", "--homeserver", "http://h", "--user", "a"], /give --password or set \$KEYROOM_PASSWORD/],
      [["send"], /missing required argument 'room'/],
      [["send", "!r:x"], /nothing to send/],
      [["send", "!r:x", "text", "--file", "f"], /either TEXT or --file/],
      [["tail", "--timeout", "soon"], /--timeout must be a number of seconds/],
      [["devserver", "--memory", "--db", "x.sqlite"], /cannot be used with option '--memory'/],
      [["devserver", "--port", "70000"], /--port must be a whole number from 0 to 65535/],
      [["nope"], /unknown command 'nope' \(see keyroom --help\)$/],
      [["devices"], /devices needs a command \(list, rename, delete; see keyroom devices --help\)$/],
      [["devices", "nope"], /unknown command 'nope' \(list, rename, delete; see keyroom devices --help\)$/],
      [["bot"], /bot needs a command \(init, run, verify, recover, reset;/],
      [["verify", "qr"], /qr needs a command \(show, scan; see keyroom verify qr --help\)$/],
      [
        ["bot", "init", "d", "--homeserver", "http://h", "--user", "u"],
        /give --password, set \$KEYROOM_PASSWORD, or type the password on stdin/,
      ],
      [["whoami", "extra"], /too many arguments for 'whoami'/],
      [["verify", "qr", "scan", "aGVsbG8="], /this is not a Matrix verification QR code/],
      [["verify", "qr", "scan", "not base64!"], /give the code's bytes in base64, or a \.png file/],
      [["send", "--nope", "!r:x", "hi"], /unknown option '--nope'/],
      // A bare name is no user ID: refused here, not sent to the server as a malformed request.
      [["verify", "request", "bob"], /USER must be a full user ID like @name:example\.org, got "bob"/],
      [["verify", "qr", "show", "bob"], /USER must be a full user ID/],
      [["invite", "!r:x", "bob"], /USER must be a full user ID/],
      [["create-room", "--invite", "@a:x", "--invite", "bob"], /--invite must be a full user ID/],
      [["bot", "verify", "bob"], /USER must be a full user ID/],
    ];
    for (const [args, pattern] of cases) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      // Exactly one line, the whole of stderr: scripts read it.
      const lines = r.err.split("\n");
      assert.equal(lines.length, 2, r.err);
      assert.equal(lines[1], "");
      assert.match(lines[0] ?? "", /^keyroom: /);
      assert.match(lines[0] ?? "", pattern);
      assert.equal(r.out, "");
    }
  });
});

describe("profile", () => {
  const profile = (over: Partial<Profile> = {}): Profile => ({
    version: 1,
    homeserverUrl: "http://127.0.0.1:8008",
    userId: "@a:localhost",
    deviceId: "DEV",
    accessToken: "syt_secret_token",
    storeDir: "/tmp/x",
    encryption: true,
    ...over,
  });

  test("directory: --profile, then $KEYROOM_PROFILE, then $XDG_CONFIG_HOME/keyroom, then ~/.config/keyroom", () => {
    assert.equal(resolveProfileDir("/p", { KEYROOM_PROFILE: "/e" }), "/p");
    assert.equal(resolveProfileDir(undefined, { KEYROOM_PROFILE: "/e", XDG_CONFIG_HOME: "/x" }), "/e");
    assert.equal(resolveProfileDir(undefined, { KEYROOM_PROFILE: "", XDG_CONFIG_HOME: "/x" }), "/x/keyroom");
    assert.match(resolveProfileDir(undefined, {}), /\/\.config\/keyroom$/);
  });

  test('--profile "" (an unset variable) is a usage error, not $KEYROOM_PROFILE or the default profile', async () => {
    assert.throws(
      () => resolveProfileDir("", { KEYROOM_PROFILE: "/e" }),
      (e: unknown) => e instanceof CliError && e.code === "USAGE",
    );
    // A login would otherwise replace the default profile (and lose its token) with another account.
    const d = join(dir, "default-profile");
    await writeProfile(d, profile());
    const saved = process.env.KEYROOM_PROFILE;
    process.env.KEYROOM_PROFILE = d;
    try {
      for (const args of [
        ["whoami", "--profile", ""],
        ["login", "--homeserver", "http://127.0.0.1:9", "--user", "b", "--password", "p", "--profile", ""],
      ]) {
        const r = await run(args);
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
        assert.equal(r.err, "keyroom: --profile needs a directory, got an empty string\n");
      }
    } finally {
      if (saved === undefined) delete process.env.KEYROOM_PROFILE;
      else process.env.KEYROOM_PROFILE = saved;
    }
    assert.deepEqual(await readProfile(d), profile());
  });

  test("written 0600 and read back; missing → undefined; NO_PROFILE from requireProfile", async () => {
    const d = join(dir, "p1");
    assert.equal(await readProfile(d), undefined);
    await assert.rejects(requireProfile(d), (e: unknown) => e instanceof CliError && e.code === "NO_PROFILE");
    await writeProfile(d, profile());
    assert.equal((await stat(join(d, "profile.json"))).mode & 0o777, 0o600);
    assert.equal((await stat(d)).mode & 0o777, 0o700);
    assert.deepEqual(await readProfile(d), profile());
    await writeProfile(d, profile({ deviceId: "OTHER" }));
    assert.equal((await requireProfile(d)).deviceId, "OTHER");
  });

  test("a leftover temporary file or a link planted at its name is never written through", async () => {
    const d = join(dir, "p-planted");
    await writeProfile(d, profile());
    const tmp = join(d, `profile.json.${process.pid}.tmp`);
    // A link to a file the attacker reads: the token must not land there.
    const bait = join(dir, "bait.txt");
    await writeFile(bait, "bait\n", { mode: 0o644 });
    await symlink(bait, tmp);
    await writeProfile(d, profile({ deviceId: "AFTER_LINK" }));
    assert.equal(await readFile(bait, "utf8"), "bait\n");
    assert.equal((await lstat(join(d, "profile.json"))).isSymbolicLink(), false);
    assert.equal((await stat(join(d, "profile.json"))).mode & 0o777, 0o600);
    assert.equal((await requireProfile(d)).deviceId, "AFTER_LINK");
    // A world-readable leftover from a crash is replaced, not reused with its mode.
    await writeFile(tmp, "old", { mode: 0o644 });
    await writeProfile(d, profile({ deviceId: "AFTER_LEFTOVER" }));
    assert.equal((await stat(join(d, "profile.json"))).mode & 0o777, 0o600);
    assert.equal((await requireProfile(d)).deviceId, "AFTER_LEFTOVER");
  });

  test("a corrupt or invalid file is PROFILE_CORRUPT, and the error names no token", async () => {
    const d = join(dir, "p2");
    await writeProfile(d, profile());
    for (const text of [
      "{ nope",
      JSON.stringify({ ...profile(), version: 2 }),
      JSON.stringify({ ...profile(), accessToken: 5 }),
    ]) {
      await writeFile(join(d, "profile.json"), text);
      await assert.rejects(readProfile(d), (e: unknown) => {
        assert.ok(e instanceof CliError && e.code === "PROFILE_CORRUPT");
        assert.ok(!e.message.includes("syt_secret_token"));
        return true;
      });
    }
  });

  test("publicProfile drops the token; store directories are per user and device", () => {
    assert.ok(!JSON.stringify(publicProfile(profile())).includes("syt_secret_token"));
    assert.equal(accountStoreDir("/p", "@a/b:x", "D1"), "/p/accounts/_a_b_x/D1");
    assert.notEqual(accountStoreDir("/p", "@a:x", "D1"), accountStoreDir("/p", "@a:x", "D2"));
  });

  test("writing into an unwritable place is PROFILE_WRITE", async () => {
    const file = join(dir, "a-file");
    await writeFile(file, "");
    await assert.rejects(
      writeProfile(join(file, "sub"), profile()),
      (e: unknown) => e instanceof CliError && e.code === "PROFILE_WRITE",
    );
  });
});

describe("output", () => {
  const event = (over: Partial<RoomEvent>): RoomEvent => {
    const base = {
      roomId: "!r:x",
      eventId: "$e",
      sender: "@a:x",
      type: "m.room.message",
      content: { msgtype: "m.text", body: "hi" },
      originServerTs: 5,
    };
    const merged = { ...base, ...over };
    return {
      ...merged,
      raw: {
        event_id: merged.eventId,
        type: over.raw?.type ?? merged.type,
        sender: merged.sender,
        origin_server_ts: 5,
        content: merged.content,
      },
    } as RoomEvent;
  };

  test("plaintext message: no decrypted/trust fields", () => {
    const line = messageLine(
      event({
        content: {
          msgtype: "m.notice",
          body: "b",
          format: "org.matrix.custom.html",
          formatted_body: "<i>b</i>",
        },
      }),
    );
    assert.deepEqual(line, {
      room_id: "!r:x",
      event_id: "$e",
      sender: "@a:x",
      type: "m.room.message",
      msgtype: "m.notice",
      body: "b",
      formatted_body: "<i>b</i>",
      origin_server_ts: 5,
      encrypted: false,
    });
  });

  test("decrypted and undecryptable encrypted events", () => {
    const ok = messageLine({
      ...event({}),
      raw: { event_id: "$e", type: "m.room.encrypted", sender: "@a:x", origin_server_ts: 5, content: {} },
      encryption: { decrypted: true, trust: "verified" },
    });
    assert.equal(ok.encrypted, true);
    assert.equal(ok.decrypted, true);
    assert.equal(ok.trust, "verified");
    assert.equal(ok.body, "hi");
    const failed = messageLine({
      ...event({
        type: "m.room.encrypted",
        content: { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "x", body: "spoof" },
      }),
      encryption: { decrypted: false, code: "UNKNOWN_SESSION", reason: "no key" },
    });
    assert.deepEqual(
      [failed.type, failed.body, failed.encrypted, failed.decrypted, failed.trust, failed.error],
      ["m.room.encrypted", null, true, false, null, "UNKNOWN_SESSION"],
    );
  });

  test("only messages are tailed", () => {
    assert.equal(isMessageEvent(event({})), true);
    assert.equal(isMessageEvent(event({ type: "m.reaction" })), false);
    assert.equal(isMessageEvent(event({ type: "m.room.message", stateKey: "" })), false);
  });

  test("errorMessage is one line and keeps the errcode", () => {
    assert.equal(
      errorMessage(new MatrixError(403, { errcode: "M_FORBIDDEN", error: "not\nallowed" })),
      "M_FORBIDDEN (HTTP 403): not allowed",
    );
    assert.match(
      errorMessage(new NetworkError("TIMEOUT", "timed out")),
      /^network error \(TIMEOUT\): timed out$/,
    );
    assert.equal(errorMessage(new CliError("USAGE", "bad")), "bad");
    assert.equal(errorMessage("weird"), "unexpected failure: weird");
  });

  // A server's error string or a sender's message could carry ESC sequences (OSC 52 writes the
  // clipboard), C1 controls or bidirectional overrides: none reaches the terminal as it is.
  const hostile = "x\u001b]52;c;aGk=\u0007\u009b2J\u202eevil\u007f";
  const unsafe = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;

  test("errorMessage escapes them", () => {
    const line = errorMessage(new MatrixError(403, { errcode: "M_FORBIDDEN", error: hostile }));
    assert.ok(!unsafe.test(line), line);
    assert.match(line, /^M_FORBIDDEN \(HTTP 403\): x\\u001b\]52;c;aGk=\\u0007/);
  });

  test("a message line escapes them and reads back the same", () => {
    const line = jsonLine(messageLine(event({ content: { msgtype: "m.text", body: hostile } })));
    assert.ok(!unsafe.test(line.trimEnd()), line);
    assert.equal((JSON.parse(line) as { body: string }).body, hostile);
  });
});

test("verify on a terminal: the emoji drawn large with their names, the numbers, the question in words", () => {
  const emoji = [
    { symbol: "🐶", name: "Dog" },
    { symbol: "🔑", name: "Key" },
  ];
  const drawn = drawSas(emoji, [4012, 1732, 7201]);
  for (const e of emoji) {
    assert.ok(drawn.includes(e.symbol));
    assert.ok(drawn.includes(e.name));
  }
  assert.match(drawn, /4012 1732 7201/);
  assert.match(drawn, /Do these match what the other device shows\? Type y and Enter if they match/);
});

describe("arguments", () => {
  test("integers, seconds, homeserver URLs", () => {
    assert.equal(parseInteger("--limit", 1, 10)("7"), 7);
    for (const bad of ["0", "11", "1.5", "-1", "", "1e3", "x"])
      assert.throws(() => parseInteger("--limit", 1, 10)(bad), CliError);
    assert.equal(parseSeconds("--timeout")("1.5"), 1500);
    assert.equal(parseSeconds("--timeout")("0"), 0);
    for (const bad of ["-1", "1s", "90000", ""])
      assert.throws(() => parseSeconds("--timeout")(bad), CliError);
    assert.equal(parseHomeserver("https://m.example.org"), "https://m.example.org");
    assert.throws(() => parseHomeserver("ftp://m.example.org"), CliError);
  });

  test("send: argument combinations and content types", () => {
    const base: SendArgs = { profileDir: "/p", room: "!r:x", notice: false, html: false };
    assert.doesNotThrow(() => validateSendArgs({ ...base, text: "hi" }));
    assert.doesNotThrow(() => validateSendArgs({ ...base, file: "a.png" }));
    assert.throws(() => validateSendArgs(base), /nothing to send/);
    assert.throws(() => validateSendArgs({ ...base, text: "" }), /nothing to send/);
    assert.throws(() => validateSendArgs({ ...base, file: "a", html: true }), /do not apply/);
    assert.equal(contentTypeFor("Photo.JPG"), "image/jpeg");
    assert.equal(contentTypeFor("notes"), "application/octet-stream");
  });
});

test("profile written by writeProfile holds the token only in the file", async () => {
  const d = join(dir, "p3");
  await writeProfile(d, {
    version: 1,
    homeserverUrl: "http://h",
    userId: "@u:h",
    deviceId: "D",
    accessToken: "tok_abc",
    storeDir: "/s",
    encryption: false,
  });
  assert.match(await readFile(join(d, "profile.json"), "utf8"), /tok_abc/);
});
