// A virtual user whose start at runtime fails (the homeserver answering 500 or the network failing
// while it catches up, or encryption not starting) leaves no trace: `user()` fails, every call
// made meanwhile with it, its client is closed (no file of its directory is left open), the user
// is not started (no transaction reaches a half-started client), and what came for it is kept for
// a later start: a later `user()` starts it afresh, and its handlers see the room events (and the
// read receipts and to-device messages) that came before, during and after the failed start, each
// once and in order. Scripted homeserver.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MatrixError } from "../index.ts";
import { Appservice, virtualUserPaths } from "./appservice.ts";
import {
  type Fault,
  ME,
  message,
  ROOM,
  registrationOf,
  scripted,
  txnOf,
} from "./test-support/scripted-start.ts";
import { parseTransaction } from "./transaction.ts";

const REGISTRATION = registrationOf("failed");
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** A transaction with a room event, its read receipt and a to-device message for the user's device. */
const withToDevice = (id: string) =>
  parseTransaction({
    events: [message(id)],
    ephemeral: [
      { type: "m.receipt", room_id: ROOM, content: { [id]: { "m.read": { "@alice:hs": { ts: 1 } } } } },
    ],
    to_device: [
      { type: "org.example.ping", sender: "@alice:hs", to_user_id: ME, to_device_id: "DEV", content: {} },
    ],
  });

/** How many files under `dir` this process has open (Linux; undefined elsewhere). */
function openFilesUnder(dir: string): number | undefined {
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return undefined;
  }
  let n = 0;
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dir}/`)) n++;
    } catch {
      // Closed meanwhile (the directory listing's own fd).
    }
  }
  return n;
}

async function withAppservice(
  hs: ReturnType<typeof scripted>,
  encryption: boolean,
  body: (as: Appservice, paths: ReturnType<typeof virtualUserPaths>) => Promise<void>,
): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "keyroom-failed-start-"));
  const as = new Appservice({
    registration: REGISTRATION,
    homeserverUrl: "https://hs.invalid",
    dataDir,
    encryption,
    fetch: hs.fetch,
    logger: quiet,
    // The client's retries of a failing request, without waiting.
    clientOptions: {
      fillTimelineGaps: false,
      clock: { now: Date.now, sleep: async () => {}, random: () => 0 },
    },
  });
  try {
    await as.start();
    await body(as, virtualUserPaths(dataDir, ME));
  } finally {
    hs.release();
    await as.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The start fails on `fault` after a transaction came while it started: it leaves no trace, and a
 * later start gets that transaction's events, and a later one's, before what comes after it.
 */
async function failsThenRetries(fault: Fault | "crypto-store", encryption: boolean): Promise<void> {
  const hs = scripted();
  await withAppservice(hs, encryption, async (as, { dir, cryptoStore }) => {
    // A directory where its crypto store should be: the store cannot open, encryption not start.
    if (fault === "crypto-store") mkdirSync(cryptoStore, { recursive: true });
    else hs.fail(fault);
    const first = as.user(ME, { deviceId: "DEV" });
    await hs.paused();
    await as.handleTransaction("t1", txnOf("$during"));
    hs.release();
    await assert.rejects(first);
    assert.deepEqual(as.userIds, [], "not started, nor starting");
    const open = openFilesUnder(dir);
    if (open !== undefined) assert.equal(open, 0, "its client and stores are closed");

    // Not started: this is held for it, not fed to a half-started (closed) client.
    assert.equal(await as.handleTransaction("t2", withToDevice("$between")), true);
    hs.heal();
    rmSync(cryptoStore, { recursive: true, force: true });
    hs.rearm();
    hs.release();
    const client = await as.user(ME, { deviceId: "DEV" });
    assert.equal(hs.deviceCalls(), 2, "started afresh");
    assert.deepEqual(as.userIds, [ME]);
    const seen: string[] = [];
    client.on("room.event", (_room, ev) => {
      seen.push(ev.eventId);
    });
    client.on("room.receipt", (_room, content) => {
      seen.push(`receipt of ${Object.keys(content).join()}`);
    });
    client.on("toDevice", (ev) => {
      seen.push(ev.type);
    });
    await as.handleTransaction("t3", txnOf("$after"));
    assert.deepEqual(seen, ["$during", "org.example.ping", "$between", "receipt of $between", "$after"]);
  });
}

describe("a virtual user whose start fails", () => {
  it("on a 500 while fetching a room's state: no trace, and a retry gets what came meanwhile", async () => {
    await failsThenRetries("state-500", false);
  });

  it("on the network failing while reading its account data: the same", async () => {
    await failsThenRetries("sync-network", false);
  });

  it("on its encryption not starting (its crypto store does not open): the same", async () => {
    await failsThenRetries("crypto-store", true);
  });

  it("fails every user() call made during it with its error; a call after it starts it again", async () => {
    const hs = scripted();
    await withAppservice(hs, false, async (as, { dir }) => {
      hs.fail("state-500");
      const first = as.user(ME, { deviceId: "DEV" });
      await hs.paused();
      const second = as.user("v_me");
      hs.release();
      const errors = await Promise.allSettled([first, second]);
      assert.deepEqual(
        errors.map((r) => r.status),
        ["rejected", "rejected"],
      );
      const [a, b] = errors.map((r) => (r.status === "rejected" ? r.reason : undefined));
      assert.ok(a instanceof MatrixError && a.httpStatus === 500);
      assert.equal(b, a, "the same failure");
      assert.equal(hs.deviceCalls(), 1, "one start for both");
      const open = openFilesUnder(dir);
      if (open !== undefined) assert.equal(open, 0, "its client and stores are closed");

      hs.heal();
      hs.rearm();
      hs.release();
      const third = await as.user(ME);
      assert.equal(hs.deviceCalls(), 2, "started again");
      assert.equal(await as.user(ME), third, "and started once");
      const seen: string[] = [];
      third.on("room.event", (_room, ev) => {
        seen.push(ev.eventId);
      });
      await as.handleTransaction("t1", txnOf("$1"));
      assert.deepEqual(seen, ["$1"]);
    });
  });
});
