// `keyroom recovery …` spawned against the devserver: the JSON lines of the issue 12 contract,
// exactly; passphrases read from stdin (not a terminal); secrets never on stderr.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "../../src/cli/program.ts";
import { CLI_MAIN, finished, jsonLines, REPO_ROOT, runKeyroom, spawnKeyroom } from "../support/cli.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";
import { PYTHON } from "../support/python.ts";

async function ok(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; stdin?: string; secrets?: string[] } = {},
): Promise<Record<string, unknown>> {
  const r = await spawnKeyroom(args, opts.env, opts.stdin);
  assert.equal(r.code, 0, `keyroom ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  for (const s of opts.secrets ?? []) assert.ok(!r.stderr.includes(s), "a secret was written to stderr");
  const out = jsonLines(r.stdout);
  assert.equal(out.length, 1, r.stdout);
  return out[0] as Record<string, unknown>;
}

async function inProcess(args: string[]): Promise<string> {
  const r = await runKeyroom(args);
  assert.equal(r.code, 0, `keyroom ${args.join(" ")} (in-process) exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** One JSON line from an in-process run (the spawned runs above cover the process itself). */
const inProcessLine = async (args: string[]): Promise<Record<string, unknown>> =>
  JSON.parse(await inProcess(args)) as Record<string, unknown>;

let hs: TestDevServer;
let dir: string;

before(async () => {
  hs = await startTestDevServer();
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-recovery-"));
});
after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

/** `keyroom register` or `login` of `name` (password "pw") into `profile`. */
function account(verb: "register" | "login", name: string, profile: string): Promise<string> {
  return inProcess([
    verb,
    "--homeserver",
    hs.baseUrl,
    "--user",
    name,
    "--password",
    "pw",
    "--profile",
    profile,
  ]);
}

describe("keyroom recovery", () => {
  test("enable, status, recover with the key and with the passphrase, change-key, reset", async () => {
    const name = `rcli${Date.now().toString(36)}`;
    const first = join(dir, "first");
    const login = (profile: string, verb: "register" | "login") => account(verb, name, profile);
    await login(first, "register");
    assert.deepEqual(await ok(["recovery", "status", "--profile", first]), {
      state: "disabled",
      missing: [],
    });

    const roomId = await inProcess(["create-room", "--encrypted", "--profile", first]);
    await inProcess(["send", roomId, "before recovery", "--profile", first]);
    const passphrase = "a passphrase nobody guesses";
    const enabled = await ok(["recovery", "enable", "--passphrase", "--profile", first], {
      env: { KEYROOM_PASSWORD: "pw" },
      stdin: `${passphrase}\n`,
      secrets: [passphrase],
    });
    assert.deepEqual(Object.keys(enabled), ["recovery_key"]);
    const recoveryKey = String(enabled.recovery_key);
    assert.match(recoveryKey, /^Es[1-9A-HJ-NP-Za-km-z]{2}( [1-9A-HJ-NP-Za-km-z]{4}){11}$/);
    assert.deepEqual(await inProcessLine(["recovery", "status", "--profile", first]), {
      state: "enabled",
      missing: [],
    });

    const second = join(dir, "second");
    await login(second, "login");
    const recovered = await ok(["recovery", "recover", "--key", recoveryKey, "--profile", second], {
      secrets: [recoveryKey],
    });
    assert.deepEqual(Object.keys(recovered), ["cross_signed", "backup_version", "restored"]);
    assert.equal(recovered.cross_signed, true);
    assert.equal(typeof recovered.backup_version, "string");
    assert.equal(recovered.restored, 1);

    const third = join(dir, "third");
    await login(third, "login");
    const byPassphrase = await ok(["recovery", "recover", "--passphrase", "--profile", third], {
      stdin: `${passphrase}\n`,
      secrets: [passphrase],
    });
    assert.deepEqual(byPassphrase, {
      cross_signed: true,
      backup_version: recovered.backup_version,
      restored: 1,
    });

    // A wrong key: exit 1, typed message, no secret echoed.
    const wrong = await spawnKeyroom(
      ["recovery", "recover", "--passphrase", "--profile", third],
      {},
      "nope\n",
    );
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /WRONG_KEY/);
    // Neither option, or both: usage.
    assert.equal((await spawnKeyroom(["recovery", "recover", "--profile", third])).code, 2);

    const changed = await inProcessLine(["recovery", "change-key", "--profile", third]);
    assert.deepEqual(Object.keys(changed), ["recovery_key"]);
    assert.notEqual(changed.recovery_key, recoveryKey);
    assert.deepEqual(await inProcessLine(["recovery", "status", "--profile", first]), {
      state: "enabled",
      missing: [],
    });

    // A reset from another device: new identity, backup and key; recovery stays enabled.
    const reset = await inProcessLine(["recovery", "reset", "--password", "pw", "--profile", second]);
    assert.deepEqual(Object.keys(reset), ["recovery_key"]);
    assert.deepEqual(await ok(["recovery", "status", "--profile", second]), {
      state: "enabled",
      missing: [],
    });
  });

  test("a new passphrase typed at a terminal is asked for twice, even with stdout redirected", async () => {
    const name = `rtwice${Date.now().toString(36)}`;
    const profile = join(dir, "typed-twice");
    await account("register", name, profile);
    const typed = ["first try", "second try"];
    let stderr = "";
    const code = await runCli(
      ["recovery", "enable", "--passphrase", "--password", "pw", "--profile", profile],
      {
        out: () => undefined,
        err: (s) => (stderr += s),
        readSecret: async () => typed.shift(),
        typed: true, // stdin a terminal; stdout (interactive) a file
      },
    );
    assert.equal(code, 2, stderr);
    assert.match(stderr, /the passphrases differ/);
  });

  test("on a terminal the passphrase is read without echo", async (t) => {
    if (!existsSync(PYTHON)) {
      t.skip("SKIPPED: no /usr/bin/python3 to drive a pseudo-terminal");
      return;
    }
    const name = `rtty${Date.now().toString(36)}`;
    const first = join(dir, "tty-first");
    const login = (profile: string, verb: "register" | "login") => account(verb, name, profile);
    await login(first, "register");
    const passphrase = "typed at a terminal";
    let stdout = "";
    const code = await runCli(
      ["recovery", "enable", "--passphrase", "--password", "pw", "--profile", first],
      {
        out: (s) => (stdout += s),
        err: () => undefined,
        readSecret: async () => passphrase,
      },
    );
    assert.equal(code, 0);
    assert.match(stdout, /recovery_key/);
    const second = join(dir, "tty-second");
    await login(second, "login");
    const argv = [
      process.execPath,
      "--conditions=source",
      "--import",
      "tsx",
      CLI_MAIN,
      "recovery",
      "recover",
      "--passphrase",
      "--profile",
      second,
    ];
    // Asynchronously: the devserver runs in this process and must keep answering.
    const r = await finished(
      spawn(PYTHON, ["-c", PTY_DRIVER, JSON.stringify(argv), passphrase], {
        cwd: REPO_ROOT,
        env: { ...process.env, KEYROOM_PROFILE: "", KEYROOM_PASSWORD: "", KEYROOM_DEBUG: "" },
      }),
    );
    assert.equal(r.code, 0, r.stderr);
    const { out, status } = JSON.parse(r.stdout) as { out: string; status: number };
    assert.equal(status, 0, out);
    assert.match(out, /Passphrase: /);
    assert.ok(!out.includes(passphrase), "the passphrase was echoed");
    assert.match(out, /\{"cross_signed":true,"backup_version":"[^"]+","restored":0\}/);
  });
});

/** Runs argv (JSON) on a pseudo-terminal, answers each "Passphrase" prompt, prints what the terminal showed. */
const PTY_DRIVER = `
import json, os, pty, select, sys
argv, secret = json.loads(sys.argv[1]), sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out, answered = b"", 0
while True:
    ready, _, _ = select.select([fd], [], [], 120)
    if not ready:
        break
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
    while out.count(b"Passphrase") > answered:
        os.write(fd, secret.encode() + b"\\r")
        answered += 1
_, status = os.waitpid(pid, 0)
print(json.dumps({"out": out.decode("utf8", "replace"), "status": os.waitstatus_to_exitcode(status)}))
`;
