// After every sync response the client starts the key backup's background work (the version check
// once, lookups, uploads). Most responses leave it nothing to do, and each run still took two units
// of work on the crypto store (two lease turns) to find that out. `scheduleAfterSync` asks the
// engine first, under the response's own unit of work, and starts a run only when there is work:
// the version not checked yet, a key to look up, or a room key to upload.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OlmMachine } from "../../e2ee/machine.ts";
import { roomKeyEntry } from "../../e2ee/test-support/shared-history-backup.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { MatrixError } from "../errors.ts";
import type { HttpClient, RequestOptions } from "../http.ts";
import { testKeyBackup } from "../test-support/key-backup.ts";

const USER = "@a:example.org";

async function setUp() {
  const store = await MemoryCryptoStore.open({ userId: USER, deviceId: "A" });
  const machine = await OlmMachine.open({ userId: USER, deviceId: "A", store });
  const asked: string[] = [];
  const uploaded: string[] = [];
  const http = {
    async request(opts: RequestOptions<never>) {
      asked.push(`${opts.method} ${opts.path.template}`);
      if (opts.method === "POST") return { version: "1" };
      if (opts.method === "GET") throw new MatrixError(404, { errcode: "M_NOT_FOUND" }, undefined);
      const body = opts.body as { rooms: Record<string, { sessions: Record<string, unknown> }> };
      for (const room of Object.values(body.rooms)) uploaded.push(...Object.keys(room.sessions));
      return {};
    },
  } as unknown as HttpClient;
  let units = 0;
  const backup = testKeyBackup(machine, http, (work) => {
    units++;
    return work();
  });
  return {
    machine,
    backup,
    asked,
    uploaded,
    units: () => units,
    /** A sync response's call, and the run it started (if any) waited for. */
    afterSync: async () => {
      units = 0;
      backup.scheduleAfterSync();
      await backup.idle();
    },
  };
}

describe("the key backup's work after a sync response", () => {
  it("checks the version at the first response, then runs only when a key waits to go up", async () => {
    const t = await setUp();
    try {
      await t.afterSync();
      assert.deepEqual(t.asked, ["GET /_matrix/client/v3/room_keys/version"], "the version checked once");
      await t.afterSync();
      assert.equal(t.units(), 0, "no backup, nothing to look up: no unit of work");
      assert.deepEqual(t.asked, ["GET /_matrix/client/v3/room_keys/version"]);

      await t.backup.createVersion();
      await t.backup.idle();
      await t.afterSync();
      assert.equal(t.units(), 0, "every key backed up: no unit of work");

      const key = roomKeyEntry("!r:example.org", false);
      await t.machine.importRoomKeys([key]);
      await t.afterSync();
      assert.ok(t.units() > 0);
      assert.deepEqual(t.uploaded, [key.session_id], "the new key went up");
      await t.afterSync();
      assert.equal(t.units(), 0);
    } finally {
      await t.backup.close();
      await t.machine.close();
    }
  });
});
