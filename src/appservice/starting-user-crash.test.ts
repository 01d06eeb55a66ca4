// A crash while a virtual user starts loses none of the to-device messages held for it: they are on
// disk (`<dataDir>/held-to-device/`) before the transaction that brought them is acknowledged, and
// the homeserver never sends an acknowledged transaction again. The next process hands them to the
// user when it starts, whether `start()` brings it back (its session was saved before the crash) or
// a later `user()` starts it afresh, and forgets them once handed over. Scripted homeserver; the
// crashed process is abandoned (let go only once the next one is done).
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { MatrixClient } from "../index.ts";
import { Appservice, virtualUserPaths } from "./appservice.ts";
import { HELD_TO_DEVICE_DIR } from "./held-to-device.ts";
import {
  ME,
  type PauseAt,
  registrationOf,
  scripted,
  startingMe,
  txnOf,
} from "./test-support/scripted-start.ts";
import { parseTransaction } from "./transaction.ts";

const REGISTRATION = registrationOf("crash");
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ping = (n: number) => ({
  type: "org.example.ping",
  sender: "@alice:hs",
  to_user_id: ME,
  to_device_id: "DEV",
  content: { n },
});

/** Files (not folders) left under the held to-device folder. */
function heldFiles(dataDir: string): string[] {
  const root = join(dataDir, HELD_TO_DEVICE_DIR);
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name);
}

/**
 * A process whose start of ME pauses at `pauseAt` acknowledges a transaction with two to-device
 * messages for ME, then crashes. Returns the data directory and a cleanup for the abandoned process.
 */
async function crashWhileStarting(pauseAt: PauseAt, encryption: boolean) {
  const dataDir = mkdtempSync(join(tmpdir(), "keyroom-crash-"));
  dirs.push(dataDir);
  const hs = scripted(pauseAt);
  const { as } = await startingMe(hs, REGISTRATION, { encryption, logger: quiet, dataDir });
  const acknowledged = await as.handleTransaction(
    "t1",
    parseTransaction({ events: [], to_device: [ping(1), ping(2)] }),
  );
  assert.equal(acknowledged, true);
  assert.equal(heldFiles(dataDir).length, 1, "on disk before it was acknowledged");
  // The abandoned process, let go once the test is over (its requests would keep the test alive).
  const abandoned = async () => {
    hs.release();
    await as.close();
  };
  return { dataDir, abandoned };
}

/** The next process, on the same data directory, over a homeserver that does not pause. */
function nextProcess(dataDir: string, encryption: boolean) {
  const hs = scripted();
  hs.release();
  return new Appservice({
    registration: REGISTRATION,
    homeserverUrl: "https://hs.invalid",
    encryption,
    dataDir,
    fetch: hs.fetch,
    logger: quiet,
    clientOptions: { fillTimelineGaps: false },
  });
}

/** What `client` hands its listeners, in order: to-device messages' `n`, room events' IDs. */
function seenBy(client: MatrixClient): unknown[] {
  const seen: unknown[] = [];
  client.on("toDevice", (ev) => {
    seen.push(ev.content.n);
  });
  client.on("room.event", (_room, ev) => {
    seen.push(ev.eventId);
  });
  return seen;
}

describe("to-device messages held for a starting virtual user, across a crash", () => {
  it("reach the user started afresh by the next process's user()", async () => {
    const { dataDir, abandoned } = await crashWhileStarting("device", false);
    const as = nextProcess(dataDir, false);
    try {
      await as.start();
      const client = await as.user(ME, { deviceId: "DEV" });
      const seen = seenBy(client);
      await as.handleTransaction("t2", txnOf("$after"));
      assert.deepEqual(seen, [1, 2, "$after"]);
      assert.deepEqual(heldFiles(dataDir), [], "forgotten once handed over");
    } finally {
      await as.close();
      await abandoned();
    }
  });

  it("reach the user start() brings back, once its caller had it: before the first transaction", async () => {
    const { dataDir, abandoned } = await crashWhileStarting("key-counts", true);
    const as = nextProcess(dataDir, true);
    try {
      await as.start();
      assert.deepEqual(as.userIds, [ME], "its session was saved before the crash");
      const client = await as.user(ME);
      const seen = seenBy(client);
      await new Promise<void>((next) => setImmediate(next));
      assert.deepEqual(seen, [], "not before the first transaction: handlers go on before listen()");
      await as.handleTransaction("t2", txnOf("$after"));
      assert.deepEqual(seen, [1, 2, "$after"]);
      assert.deepEqual(heldFiles(dataDir), [], "forgotten once handed over");
    } finally {
      await as.close();
      await abandoned();
    }
  });

  it("leave the device lists outdated at the next start when device-list changes were held", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "keyroom-crash-lists-"));
    dirs.push(dataDir);
    // A first run makes the device, which then knows its own user's devices (always tracked).
    const first = nextProcess(dataDir, true);
    await first.start();
    await (await first.user(ME, { deviceId: "DEV" })).getUserDevices(ME);
    await first.close();
    // Started again by user() (set aside while start() ran), it waits once restored; another
    // device of its user came meanwhile; then the process crashes.
    const dir = virtualUserPaths(dataDir, ME).dir;
    const aside = `${dataDir}-aside`;
    dirs.push(aside);
    renameSync(dir, aside);
    const hs = scripted("key-counts");
    const crashed = new Appservice({
      registration: REGISTRATION,
      homeserverUrl: "https://hs.invalid",
      dataDir,
      fetch: hs.fetch,
      logger: quiet,
      clientOptions: { fillTimelineGaps: false },
    });
    await crashed.start();
    renameSync(aside, dir);
    void crashed.user(ME).catch(() => undefined);
    await hs.paused();
    await crashed.handleTransaction("t1", parseTransaction({ events: [], device_lists: { changed: [ME] } }));

    // The next process brings it back; its start waits once its client is restored.
    const nextHs = scripted("key-counts");
    const as = new Appservice({
      registration: REGISTRATION,
      homeserverUrl: "https://hs.invalid",
      dataDir,
      fetch: nextHs.fetch,
      logger: quiet,
      clientOptions: { fillTimelineGaps: false },
    });
    try {
      const started = as.start();
      await nextHs.paused();
      const before = nextHs.queriesFor(ME);
      nextHs.release();
      await started;
      const client = await as.user(ME);
      await client.getUserDevices(ME);
      assert.ok(nextHs.queriesFor(ME) > before, "its own devices asked for again: the change was not missed");
      await as.handleTransaction("t2", txnOf("$after"));
      assert.deepEqual(heldFiles(dataDir), [], "forgotten once handed over");
    } finally {
      await as.close();
      hs.release();
      await crashed.close();
    }
  });
});
