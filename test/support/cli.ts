// Running the `keyroom` CLI in tests: spawned (the real bin, through tsx) or in-process, with its
// JSON-lines output parsed.
import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "../../src/cli/program.ts";
import type { MatrixClient, VerificationRequest } from "../../src/index.ts";

/** The repository's root, and the CLI's entry under it (run through tsx). */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CLI_MAIN = join(REPO_ROOT, "src/cli/main.ts");

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts `keyroom ARGS` (no profile or password from the caller's environment); stdin stays open. */
export function startKeyroom(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ["--conditions=source", "--import", "tsx", CLI_MAIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, KEYROOM_PROFILE: "", KEYROOM_PASSWORD: "", KEYROOM_DEBUG: "", ...env },
  });
}

/** Everything a started `keyroom` wrote, once it exits. Call it before the output starts flowing. */
export function finished(child: ChildProcessWithoutNullStreams): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Spawns `keyroom ARGS` (with `stdin` as its input) and resolves with its output once it exits. */
export function spawnKeyroom(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  stdin = "",
): Promise<CliRun> {
  const child = startKeyroom(args, env);
  const done = finished(child);
  child.stdin.end(stdin);
  return done;
}

/**
 * Runs `keyroom ARGS` in this process: the same command tree, for steps whose spawned form another
 * step already covers (each spawn costs a TypeScript start-up).
 */
export async function runKeyroom(args: readonly string[]): Promise<CliRun & { readonly code: number }> {
  let stdout = "";
  let stderr = "";
  const code = await runCli([...args], { out: (s) => (stdout += s), err: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

/** The arguments of `keyroom register` or `login` as `user` (password "pw") into `profile`. */
export function accountArgs(
  command: "register" | "login",
  homeserverUrl: string,
  user: string,
  profile: string,
): string[] {
  return [command, "--homeserver", homeserverUrl, "--user", user, "--password", "pw", "--profile", profile];
}

/** A fresh user name, its profile directory under `dir`, and its user ID on `hs`. */
export function cliAccount(
  hs: { readonly serverName: string },
  dir: string,
  prefix: string,
): { name: string; profile: string; userId: string } {
  cliAccounts += 1;
  const name = `${prefix}${cliAccounts}${Date.now().toString(36)}`;
  return { name, profile: join(dir, name), userId: `@${name}:${hs.serverName}` };
}
let cliAccounts = 0;

/** Resolves with the first stdout JSON line matching `test` (a piped bot logs JSON lines). */
export function lineMatching(
  child: ChildProcessWithoutNullStreams,
  test: (record: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const onData = (d: Buffer | string) => {
      buffer += d.toString();
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
        const record = JSON.parse(line) as Record<string, unknown>;
        if (test(record)) {
          child.stdout.off("data", onData);
          resolve(record);
          return;
        }
      }
    };
    child.stdout.on("data", onData);
    child.once("close", (code) => reject(new Error(`keyroom exited ${code} before the line came`)));
  });
}

/** Each non-empty line of `text`, parsed as a JSON object. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Spawns `keyroom ARGS`, asserts success, and returns its JSON lines. */
export async function spawnOk(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<Record<string, unknown>[]> {
  const r = await spawnKeyroom(args, env);
  assert.equal(r.code, 0, `keyroom ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return jsonLines(r.stdout);
}

/** Runs `keyroom ARGS` in this process, asserts success, and returns its JSON lines. */
export async function runOk(args: readonly string[]): Promise<Record<string, unknown>[]> {
  const r = await runKeyroom(args);
  assert.equal(r.code, 0, `keyroom ${args.join(" ")} (in-process) exited ${r.code}: ${r.stderr}`);
  return jsonLines(r.stdout);
}

/** A port free right now (an appservice registration names its endpoint before anything listens). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `keyroom bot init --appservice` for `botId` in `botDir`, with an owner and two free ports. */
export async function initAppserviceBot(
  botDir: string,
  botId: string,
): Promise<CliRun & { hsPort: number; homeserver: string; ownerId: string }> {
  const [hsPort, asPort] = [await freePort(), await freePort()];
  const homeserver = `http://127.0.0.1:${hsPort}`;
  const ownerId = `@owner${Date.now().toString(36)}:localhost`;
  const init = await spawnKeyroom([
    "bot",
    "init",
    botDir,
    "--homeserver",
    homeserver,
    "--user",
    botId,
    "--owner",
    ownerId,
    "--appservice",
    `http://127.0.0.1:${asPort}`,
  ]);
  return { ...init, hsPort, homeserver, ownerId };
}

/**
 * `keyroom bot verify USER --dir DIR` run in this process (the bot stopped), the operator typing
 * `y` once the emoji are shown. With the next verification request `user` gets from the bot:
 * accept it, confirm once `shown`, and `exit` resolves with the command's exit code.
 */
export function botVerifyInProcess(
  user: MatrixClient,
  botDir: string,
): { request: Promise<VerificationRequest>; shown: Promise<void>; exit: Promise<number>; printed: string[] } {
  const request = new Promise<VerificationRequest>((resolve) => {
    const off = user.on("verification.request", (r) => {
      off();
      resolve(r);
    });
  });
  const printed: string[] = [];
  let sasShown: () => void = () => {};
  const shown = new Promise<void>((r) => {
    sasShown = r;
  });
  const exit = runCli(["bot", "verify", user.userId, "--dir", botDir], {
    out: (text) => {
      printed.push(text);
      if (text.includes('"event":"sas"')) sasShown();
    },
    err: () => {},
    readLine: async () => {
      await shown;
      return "y";
    },
  });
  return { request, shown, exit, printed };
}
