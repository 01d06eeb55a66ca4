/**
 * The account and the Olm sessions kept per sender key.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { AccountRecord } from "../records.ts";
import { pickle, sample } from "./samples.ts";
import type { ConformanceSuite } from "./target.ts";

export function olmSessionTests({ withStore }: ConformanceSuite): void {
  it("account: replaces the record and keeps optional fields only when set", () =>
    withStore(async (s) => {
      await s.saveChanges({ account: sample.account(0) });
      assert.deepEqual(await s.loadAccount(), sample.account(0));
      const next: AccountRecord = {
        pickle: pickle("account", 9),
        deviceKeysUploaded: true,
        fallbackKeyCreatedAt: 99,
      };
      await s.saveChanges({ account: next });
      assert.deepEqual(await s.loadAccount(), next);
    }));

  it("olm sessions: many per sender key, upsert and delete", () =>
    withStore(async (s) => {
      await s.saveChanges({
        olmSessions: [sample.olm("k1", "s1"), sample.olm("k1", "s2"), sample.olm("k2", "s3")],
      });
      assert.equal((await s.getOlmSessions("k1")).length, 2);
      await s.saveChanges({ olmSessions: [sample.olm("k1", "s1", 50)] });
      const s1 = (await s.getOlmSessions("k1")).find((r) => r.sessionId === "s1");
      assert.equal(s1?.lastUsedAt, 50);
      await s.saveChanges({
        deletedOlmSessions: [
          { senderKey: "k1", sessionId: "s2" },
          { senderKey: "k9", sessionId: "x" },
        ],
      });
      assert.deepEqual(
        (await s.getOlmSessions("k1")).map((r) => r.sessionId),
        ["s1"],
      );
      assert.equal((await s.getOlmSessions("k2")).length, 1);
    }));
}
