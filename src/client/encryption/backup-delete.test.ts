// Deleting a backup version the server no longer has (another device deleted it): the DELETE's
// `M_NOT_FOUND` means what the user asked for is done, as matrix-rust-sdk takes it. It used to
// throw, leaving this device on the deleted version with its key, and `m.key_backup` (and the
// legacy `m.org.matrix.custom.backup_disabled`) on.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { SqliteClientStore } from "../client-store/sqlite-store.ts";
import { MatrixError } from "../errors.ts";
import type { FetchLike } from "../http.ts";

const SESSION = { homeserverUrl: "https://hs", userId: "@me:hs", deviceId: "DEV", accessToken: "t" };

/** A server whose backup version "7" is created, then deleted elsewhere (`deleted`), or refuses DELETE. */
function server(state: { deleted: boolean; deleteError?: string; accountData: unknown[] }): FetchLike {
  return async (url, init) => {
    const p = new URL(url).pathname;
    if (p.endsWith("/room_keys/version") && init.method === "POST") return Response.json({ version: "7" });
    if (p.endsWith("/room_keys/version/7") && init.method === "DELETE") {
      if (state.deleteError !== undefined) {
        return Response.json({ errcode: state.deleteError, error: "no" }, { status: 403 });
      }
      if (state.deleted) return Response.json({ errcode: "M_NOT_FOUND", error: "gone" }, { status: 404 });
      state.deleted = true;
      return Response.json({});
    }
    if (p.endsWith("/keys/upload")) return Response.json({ one_time_key_counts: { signed_curve25519: 50 } });
    if (p.endsWith("/keys/query")) return Response.json({ device_keys: { "@me:hs": {} } });
    if (p.includes("/account_data/")) {
      const type = decodeURIComponent(p.slice(p.lastIndexOf("/") + 1));
      state.accountData.push([type, JSON.parse(String(init.body))]);
      return Response.json({});
    }
    if (p.endsWith("/room_keys/keys")) return Response.json({});
    return Response.json({ errcode: "M_NOT_FOUND", error: "not here" }, { status: 404 });
  };
}

async function open(dir: string, fetch: FetchLike): Promise<MatrixClient> {
  const store = await SqliteClientStore.open(join(dir, "client.sqlite3"));
  await store.saveSession(SESSION);
  const client = new MatrixClient({
    homeserverUrl: SESSION.homeserverUrl,
    store,
    fetch,
    encryption: { store: { directory: dir } },
  });
  await client.restore();
  return client;
}

describe("deleting a backup version", () => {
  it("one the server no longer has is forgotten here with its key, and backup is turned off", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-backup-delete-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const state = { deleted: false, accountData: [] as unknown[] };
    const client = await open(dir, server(state));
    try {
      await client.crypto.backup.createVersion();
      state.deleted = true; // another of our devices deleted it
      await client.crypto.backup.deleteVersion();
      const s = await client.crypto.backup.status({ check: false });
      assert.deepEqual([s.version, s.hasKey], [undefined, false]);
      // Off under both names (the legacy one for clients that read only it).
      assert.deepEqual(state.accountData.slice(-2), [
        ["m.key_backup", { enabled: false }],
        ["m.org.matrix.custom.backup_disabled", { disabled: true }],
      ]);
    } finally {
      await client.close();
    }
  });

  it("another refusal still fails, and the version stays in use", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-backup-delete-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const state = { deleted: false, deleteError: "M_FORBIDDEN", accountData: [] as unknown[] };
    const client = await open(dir, server(state));
    try {
      await client.crypto.backup.createVersion();
      await assert.rejects(
        client.crypto.backup.deleteVersion(),
        (e: unknown) => e instanceof MatrixError && e.errcode === "M_FORBIDDEN",
      );
      const s = await client.crypto.backup.status({ check: false });
      assert.deepEqual([s.version, s.hasKey], ["7", true]);
    } finally {
      await client.close();
    }
  });
});
