// `keyroom identity status`, `identity bootstrap` and `trust USER` spawned against the devserver:
// the JSON lines of the issue 11 contract, exactly.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli } from "../../src/cli/program.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MAIN = join(ROOT, "src/cli/main.ts");

function keyroom(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, KEYROOM_PROFILE: "", KEYROOM_PASSWORD: "", KEYROOM_DEBUG: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function ok(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Record<string, unknown>[]> {
  const r = await keyroom(args, env);
  assert.equal(r.code, 0, `keyroom ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return lines(r.stdout);
}

async function inProcess(args: string[]): Promise<Record<string, unknown>[]> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(args, { out: (s) => (stdout += s), err: (s) => (stderr += s) });
  assert.equal(code, 0, `keyroom ${args.join(" ")} (in-process) exited ${code}: ${stderr}`);
  return lines(stdout);
}

function lines(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

let hs: TestDevServer;
let dir: string;
let n = 0;
const account = (prefix: string) => {
  n += 1;
  const name = `${prefix}${n}${Date.now().toString(36)}`;
  return { name, profile: join(dir, name), userId: `@${name}:${hs.serverName}` };
};

before(async () => {
  hs = await startTestDevServer();
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-identity-"));
});
after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

describe("keyroom identity / trust", () => {
  test("status, bootstrap (password from the environment), and trust of another user", async () => {
    const alice = account("alice");
    const bob = account("bob");
    for (const a of [alice, bob]) {
      await inProcess([
        "register",
        "--homeserver",
        hs.baseUrl,
        "--user",
        a.name,
        "--password",
        "pw",
        "--profile",
        a.profile,
      ]);
    }
    const before = await ok(["identity", "status", "--profile", alice.profile]);
    assert.deepEqual(before, [
      { user_id: alice.userId, master_key: null, cross_signed: false, verified: false },
    ]);

    const boot = await ok(["identity", "bootstrap", "--profile", alice.profile], { KEYROOM_PASSWORD: "pw" });
    assert.equal(boot.length, 1);
    const line = boot[0] as Record<string, unknown>;
    assert.deepEqual(Object.keys(line), ["user_id", "master_key", "cross_signed", "verified"]);
    assert.equal(line.user_id, alice.userId);
    assert.match(String(line.master_key), /^[A-Za-z0-9+/]{43}$/);
    assert.equal(line.cross_signed, true);
    assert.equal(line.verified, true);
    // Again: nothing new, the same identity.
    assert.deepEqual(await inProcess(["identity", "bootstrap", "--profile", alice.profile]), boot);

    const trust = await ok(["trust", alice.userId, "--profile", bob.profile]);
    assert.equal(trust.length, 2, JSON.stringify(trust));
    const [device, identity] = trust;
    assert.deepEqual(Object.keys(device ?? {}), [
      "user_id",
      "device_id",
      "ed25519",
      "cross_signed",
      "verified",
      "local",
    ]);
    assert.equal(device?.user_id, alice.userId);
    assert.equal(device?.cross_signed, true);
    assert.equal(device?.verified, false);
    assert.equal(device?.local, "unset");
    assert.deepEqual(identity, {
      user_id: alice.userId,
      master_key: line.master_key,
      verified: false,
      changed: false,
    });

    // A user without cross-signing: devices not cross-signed, no master key.
    const plain = await inProcess(["trust", bob.userId, "--profile", alice.profile]);
    assert.equal(plain[0]?.cross_signed, false);
    assert.deepEqual(plain[plain.length - 1], {
      user_id: bob.userId,
      master_key: null,
      verified: false,
      changed: false,
    });
  });
});
