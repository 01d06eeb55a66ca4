// An Olm or Megolm session record the engine found damaged in the store (and deleted) is logged as a
// warning naming the table and the IDs, never the record's contents, and the sync goes on.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DamagedOlmSession } from "../../e2ee/olm-sessions/sessions.ts";
import type { SyncCryptoChanges } from "../sync/hooks.ts";
import { SyncProcessing, type SyncProcessingParts } from "./sync-processing.ts";

describe("a damaged session record reported by the engine", () => {
  it("is logged once as a warning with the table and IDs (Olm, inbound Megolm)", async () => {
    const damaged: DamagedOlmSession[] = [{ senderKey: "CURVEKEY", sessionId: "SESSIONID" }];
    const damagedInbound = [{ roomId: "!r:hs", sessionId: "MEGOLMID" }];
    const warnings: { fields: unknown; msg: string }[] = [];
    const noop = () => {};
    const parts = {
      machine: {
        userId: "@me:hs",
        hasOutdatedUsers: () => false,
        receiveSyncChanges: async () => ({
          toDevice: [],
          failures: [],
          roomKeys: [],
          redecrypted: [],
          withheldSessions: [],
          withheldEvents: [],
          heldKeyRequests: [],
          secrets: [],
          refusedSecrets: [],
          roomKeyBundles: [],
          damagedOlmSessions: damaged.splice(0),
          damagedInboundSessions: damagedInbound.splice(0),
        }),
      },
      host: {
        clock: { now: () => 0, random: () => 0, sleep: async () => {} },
        rooms: () => [],
        getRoom: () => undefined,
        emitKeyRequest: noop,
        logger: {
          debug: noop,
          info: noop,
          error: noop,
          warn: (fields: unknown, msg?: string) => void warnings.push({ fields, msg: msg ?? "" }),
        },
      },
      store: {},
      rooms: {},
      loop: { run: async () => {} },
      backup: { schedule: noop, checkVersion: async () => {} },
      historySharing: { retryDue: false },
    } as unknown as SyncProcessingParts;
    const sync = new SyncProcessing(parts);
    const changes = (n: number): SyncCryptoChanges => ({
      nextBatch: `s${n}`,
      toDeviceEvents: [],
      deviceLists: { changed: [], left: [] },
      oneTimeKeyCounts: {},
      unusedFallbackKeyTypes: [],
      changedMemberships: [],
      encryptedSenders: [],
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
