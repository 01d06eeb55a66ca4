// FileClientStore shared by processes (or by two stores on one file): each write is made under the
// lock file from the file as it is then, so none puts back what another replaced (an older
// session, whose refresh token is spent), and `saveSessionIf` is a compare-and-swap across them.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { MatrixClient } from "../client.ts";
import { manualClock } from "../test-support/manual-clock.ts";
import { RefreshServer } from "../test-support/refresh-server.ts";
import { FILE_LOCK_STALE_MS } from "./file-lock.ts";
import { FileClientStore } from "./file-store.ts";
import type { StoredSession } from "./store.ts";

const dir = await mkdtemp(join(tmpdir(), "keyroom-file-shared-"));
after(() => rm(dir, { recursive: true, force: true }));

const session: StoredSession = {
  homeserverUrl: "https://hs",
  userId: "@a:hs",
  deviceId: "D",
  accessToken: "tok-0",
};
const root = fileURLToPath(new URL("../../..", import.meta.url));
const storeModule = fileURLToPath(new URL("./file-store.ts", import.meta.url));

/** `n` compare-and-swap increments of the access token's number, by another process. */
function incrementer(path: string, n: number): Promise<void> {
  const script = `
    const { FileClientStore } = await import(${JSON.stringify(storeModule)});
    const s = new FileClientStore(${JSON.stringify(path)});
    for (let i = 0; i < ${n}; i++) {
      for (;;) {
        const now = await s.loadSession();
        const next = { ...now, accessToken: "tok-" + (Number(now.accessToken.slice(4)) + 1) };
        if (await s.saveSessionIf(next, (x) => x?.accessToken === now.accessToken)) break;
      }
    }
    await s.close();`;
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "--input-type=module", "--eval", script],
    { cwd: root, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`incrementer failed: ${stderr}`))));
  });
}

describe("FileClientStore shared by processes", () => {
  it("two stores on one file read each other's writes, and a sync save keeps the other's newer session", async () => {
    const p = join(dir, "two", "client.json");
    const a = new FileClientStore(p);
    const b = new FileClientStore(p);
    await a.saveSession(session);
    assert.deepEqual(await b.loadSession(), session);
    const renewed = { ...session, accessToken: "tok-1", refreshToken: "rt-1" };
    await a.saveSession(renewed);
    assert.deepEqual(await b.loadSession(), renewed, "b reads the file again");
    await b.saveSync({ nextBatch: "s1", rooms: [], accountData: [] });
    assert.deepEqual(await a.loadSession(), renewed, "b's sync save did not put its older session back");
    assert.equal((await a.loadSync())?.nextBatch, "s1");
    assert.equal(
      await b.saveSessionIf({ ...session, accessToken: "tok-2" }, (s) => s?.accessToken === "tok-0"),
      false,
    );
    assert.deepEqual(await a.loadSession(), renewed);
    assert.equal(await b.clearIf((s) => s?.accessToken === "tok-0"), false);
    assert.equal(await b.clearIf((s) => s?.accessToken === "tok-1"), true);
    assert.equal(await a.loadSession(), undefined);
  });

  it("saveSessionIf is a compare-and-swap across processes: of concurrent increments none is lost", async () => {
    const p = join(dir, "cas", "client.json");
    const s = new FileClientStore(p);
    await s.saveSession(session);
    const each = 25;
    await Promise.all([incrementer(p, each), incrementer(p, each), incrementer(p, each)]);
    assert.equal((await s.loadSession())?.accessToken, `tok-${3 * each}`);
    await assert.rejects(stat(`${p}.lock`), { code: "ENOENT" }, "no lock file left behind");
  });

  it("two clients on one file renew once: the second waits for the first's claim and takes its tokens", async () => {
    const p = join(dir, "refresh", "client.json");
    const srv = new RefreshServer();
    const clock = { now: () => srv.now, random: () => 0.5, sleep: async () => undefined };
    const a = new MatrixClient({
      homeserverUrl: "https://hs",
      store: new FileClientStore(p),
      fetch: srv.fetch,
      clock,
    });
    await a.login({ user: "alice", password: "pw" });
    const bClock = manualClock(() => srv.now);
    const b = await MatrixClient.fromStore(new FileClientStore(p), { fetch: srv.fetch, clock: bClock });
    srv.now += srv.lifetimeMs;
    const held = srv.hold();
    const fromA = a.whoami();
    await held.arrived;
    let bDone = false;
    const fromB = b.whoami().finally(() => {
      bDone = true;
    });
    while (bClock.sleeping() === 0 && !bDone) await new Promise((r) => setImmediate(r));
    held.release();
    await fromA;
    bClock.wake();
    await fromB.catch(() => undefined);
    assert.equal(srv.refreshes, 1, "b did not spend the refresh token a was using");
    await b.whoami();
    await a.whoami();
    assert.equal(srv.refreshes, 1);
    assert.equal(a.isLoggedIn && b.isLoggedIn, true);
    await a.close();
    await b.close();
  });

  it("a lock left by a process that died is broken; a live holder's is waited for", async () => {
    const p = join(dir, "stale", "client.json");
    const s = new FileClientStore(p);
    await s.saveSession(session);
    // A process that has exited: its ID names no process (until reused, when the lock's age tells).
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
      encoding: "utf8",
    });
    const deadPid = Number(dead.stdout);
    await writeFile(`${p}.lock`, JSON.stringify({ host: hostname(), pid: deadPid, nonce: "gone" }));
    await s.saveSession({ ...session, accessToken: "tok-1" });
    assert.equal((await s.loadSession())?.accessToken, "tok-1");
    // An old lock, whoever it names.
    await writeFile(`${p}.lock`, JSON.stringify({ host: "elsewhere", pid: 1, nonce: "old" }));
    const old = (Date.now() - 2 * FILE_LOCK_STALE_MS) / 1000;
    await utimes(`${p}.lock`, old, old);
    await s.saveSession({ ...session, accessToken: "tok-2" });
    // A live holder's (this process's): the save waits for its release.
    await writeFile(`${p}.lock`, JSON.stringify({ host: hostname(), pid: process.pid, nonce: "live" }));
    let done = false;
    const save = s.saveSession({ ...session, accessToken: "tok-3" }).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(done, false);
    assert.equal(
      (JSON.parse(await readFile(p, "utf8")) as { session: StoredSession }).session.accessToken,
      "tok-2",
    );
    await rm(`${p}.lock`);
    await save;
    assert.equal((await s.loadSession())?.accessToken, "tok-3");
  });
});
