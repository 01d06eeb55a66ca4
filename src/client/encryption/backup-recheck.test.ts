// A backup key another device sent that the engine refused as not current makes the client ask
// the server's backup version again (the version in use may have been replaced since its last
// check): once per sync with refusals at most, and at most once per BACKUP_RECHECK_INTERVAL_MS,
// so a device sending stale keys over and over costs no more than that. A refusal within the
// interval is checked at the first sync after it; a check that fails is logged, not thrown.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RefusedSecret } from "../../e2ee/secret-storage/index.ts";
import { BACKUP_SECRET } from "../../e2ee/secret-storage/names.ts";
import type { Clock } from "../clock.ts";
import { syncProcessingHarness } from "../test-support/sync-processing.ts";
import { BACKUP_RECHECK_INTERVAL_MS } from "./sync-processing.ts";

function harness() {
  let now = 1_000_000;
  let refusals: RefusedSecret[] = [];
  let checks = 0;
  let failing = false;
  const warnings: string[] = [];
  const clock: Clock = { now: () => now, random: () => 0, sleep: async () => {} };
  const { sync, changes } = syncProcessingHarness({
    result: () => ({ refusedSecrets: refusals }),
    warn: (_o, msg) => void warnings.push(msg ?? ""),
    clock,
    checkVersion: async () => {
      checks++;
      if (failing) throw new Error("offline");
    },
  });
  let batch = 0;
  /** One sync response whose to-device messages were refused as `refused`. */
  const respond = async (refused: RefusedSecret[]) => {
    refusals = refused;
    await sync.processChanges(changes(++batch));
    await sync.afterEvents();
  };
  return {
    respond,
    checks: () => checks,
    warnings,
    advance: (ms: number) => {
      now += ms;
    },
    fail: (f: boolean) => {
      failing = f;
    },
  };
}

const stale = (deviceId: string): RefusedSecret => ({ name: BACKUP_SECRET, deviceId, reason: "not_current" });

describe("the backup version asked again on a refused backup key", () => {
  it(`once per sync with refusals, at most once per BACKUP_RECHECK_INTERVAL_MS (${BACKUP_RECHECK_INTERVAL_MS} ms)`, async () => {
    const h = harness();
    await h.respond([]);
    assert.equal(h.checks(), 0, "no refusal: no check");
    await h.respond([stale("A"), stale("B"), stale("A")]);
    assert.equal(h.checks(), 1, "a burst of refusals: one check");
    // More refusals within the interval: no check yet...
    await h.respond([stale("A")]);
    h.advance(BACKUP_RECHECK_INTERVAL_MS - 1);
    await h.respond([stale("A")]);
    assert.equal(h.checks(), 1);
    // ...then one at the first sync after it, even with no new refusal in that sync.
    h.advance(1);
    await h.respond([]);
    assert.equal(h.checks(), 2);
    await h.respond([]);
    h.advance(BACKUP_RECHECK_INTERVAL_MS);
    await h.respond([]);
    assert.equal(h.checks(), 2, "nothing refused since the last check: no check");
  });

  it("a malformed key (not a stale one) and other secrets' refusals make no check", async () => {
    const h = harness();
    await h.respond([
      { name: BACKUP_SECRET, deviceId: "A", reason: "malformed" },
      { name: "m.cross_signing.master", deviceId: "A", reason: "not_current" },
    ]);
    assert.equal(h.checks(), 0);
  });

  it("a check that fails is logged and does not fail the sync", async () => {
    const h = harness();
    h.fail(true);
    await h.respond([stale("A")]);
    assert.equal(h.checks(), 1);
    assert.ok(h.warnings.includes("could not check the server's backup version after a refused backup key"));
  });
});
