// An Olm or Megolm session record the engine found damaged in the store (and deleted) is logged as a
// warning naming the table and the IDs, never the record's contents, and the sync goes on.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DamagedOlmSession } from "../../e2ee/olm-sessions/sessions.ts";
import { syncProcessingHarness } from "../test-support/sync-processing.ts";

describe("a damaged session record reported by the engine", () => {
  it("is logged once as a warning with the table and IDs (Olm, inbound Megolm)", async () => {
    const damaged: DamagedOlmSession[] = [{ senderKey: "CURVEKEY", sessionId: "SESSIONID" }];
    const damagedInbound = [{ roomId: "!r:hs", sessionId: "MEGOLMID" }];
    const warnings: { fields: unknown; msg: string }[] = [];
    const { sync, changes } = syncProcessingHarness({
      result: () => ({
        damagedOlmSessions: damaged.splice(0),
        damagedInboundSessions: damagedInbound.splice(0),
      }),
      warn: (fields, msg) => void warnings.push({ fields, msg: msg ?? "" }),
    });
    await sync.processChanges(changes(1));
    await sync.processChanges(changes(2));
    assert.equal(warnings.length, 2);
    assert.deepEqual(warnings[0]?.fields, {
      table: "olm_sessions",
      senderKey: "CURVEKEY",
      sessionId: "SESSIONID",
    });
    assert.match(warnings[0]?.msg ?? "", /Olm session record .*(corrupted or tampered)/);
    assert.deepEqual(warnings[1]?.fields, {
      table: "inbound_group_sessions",
      roomId: "!r:hs",
      sessionId: "MEGOLMID",
    });
    assert.match(warnings[1]?.msg ?? "", /Megolm session record .*(corrupted or tampered)/);
  });
});
