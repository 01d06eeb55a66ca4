// A `/room_keys/version` answer the crypto store would refuse to keep (a version ID with a lone
// surrogate or past MAX_BACKUP_VERSION_LENGTH, `auth_data` nesting past MAX_BACKUP_AUTH_DATA_DEPTH)
// used to be taken at the edge and fail in the store: every check of the backup (each `status()`,
// the background work after syncs) then failed with a StoreError for as long as the server said so.
// It is refused as malformed, nothing is kept, and a well-formed answer afterwards is used as usual.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MAX_BACKUP_AUTH_DATA_DEPTH, MAX_BACKUP_VERSION_LENGTH } from "../../wire/index.ts";
import { MatrixClient } from "../client.ts";
import { SqliteClientStore } from "../client-store/sqlite-store.ts";
import { MalformedResponseError } from "../errors.ts";
import type { FetchLike } from "../http.ts";
import type { BackupStatus } from "./backup.ts";

const SESSION = { homeserverUrl: "https://hs", userId: "@me:hs", deviceId: "DEV", accessToken: "t" };
const ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2";

/** The server's backup: what `POST` answers, and the version `GET` reports (JSON text). */
interface Backup {
  created: string;
  current: string | undefined;
  publicKey: string;
}

function server(backup: Backup): FetchLike {
  return async (url, init) => {
    const p = new URL(url).pathname;
    const json = (text: string) => new Response(text, { headers: { "Content-Type": "application/json" } });
    if (p.endsWith("/room_keys/version")) {
      if (init.method === "POST") {
        backup.publicKey = JSON.parse(String(init.body)).auth_data.public_key;
        return json(backup.created);
      }
      if (backup.current !== undefined) return json(backup.current);
    }
    if (p.endsWith("/keys/upload")) return Response.json({ one_time_key_counts: { signed_curve25519: 50 } });
    if (p.endsWith("/keys/query")) return Response.json({ device_keys: { "@me:hs": {} } });
    if (p.endsWith("/room_keys/keys") || p.includes("/account_data/")) return Response.json({});
    return Response.json({ errcode: "M_NOT_FOUND", error: "not here" }, { status: 404 });
  };
}

async function open(dir: string, backup: Backup): Promise<MatrixClient> {
  const store = await SqliteClientStore.open(join(dir, "client.sqlite3"));
  if ((await store.loadSession()) === undefined) await store.saveSession(SESSION);
  const client = new MatrixClient({
    homeserverUrl: SESSION.homeserverUrl,
    store,
    fetch: server(backup),
    encryption: { store: { directory: dir } },
  });
  await client.restore();
  return client;
}

/** A version body (JSON text) with this version ID and extra `auth_data` fields, already JSON. */
const version = (id: string, publicKey: string, extra = "") =>
  `{"version":${id},"algorithm":"${ALGORITHM}","auth_data":{"public_key":"${publicKey}"${extra}}}`;

const deep = (levels: number) => `${'{"a":'.repeat(levels)}1${"}".repeat(levels)}`;

/** Version IDs the store cannot keep, as JSON text (a lone surrogate as JSON's escape). */
const BAD_IDS: [string, string][] = [
  ["a lone surrogate", '"7\\ud800"'],
  ["past MAX_BACKUP_VERSION_LENGTH", JSON.stringify("7".repeat(MAX_BACKUP_VERSION_LENGTH + 1))],
];

describe("key backup version answers the crypto store cannot keep", () => {
  it("a created version's ID: createVersion fails as malformed, no version is kept", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-backup-version-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const backup: Backup = { created: "", current: undefined, publicKey: "" };
    const client = await open(dir, backup);
    try {
      for (const [, id] of BAD_IDS) {
        backup.created = `{"version":${id}}`;
        await assert.rejects(client.crypto.backup.createVersion(), MalformedResponseError);
        assert.equal((await client.crypto.backup.status({ check: false })).version, undefined);
      }
      backup.created = '{"version":"7"}';
      assert.equal((await client.crypto.backup.createVersion()).version, "7");
    } finally {
      await client.close();
    }
  });

  it("the current version's ID or auth_data: the check fails as malformed, the version in use stays", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-backup-version-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const backup: Backup = { created: '{"version":"7"}', current: undefined, publicKey: "" };
    const client = await open(dir, backup);
    let before: BackupStatus;
    try {
      const { privateKey } = await client.crypto.backup.createVersion();
      backup.current = version('"7"', backup.publicKey);
      before = await client.crypto.backup.status();
      assert.equal(before.version, "7");
      // The key we hold is each answer's: without the check at the edge, each was adopted (or kept).
      const answers = [
        ...BAD_IDS.map(([, id]) => version(id, backup.publicKey)),
        version('"7"', backup.publicKey, `,"x":${deep(MAX_BACKUP_AUTH_DATA_DEPTH)}`),
        version('"8"', backup.publicKey, `,"x":${deep(MAX_BACKUP_AUTH_DATA_DEPTH)}`),
      ];
      for (const answer of answers) {
        backup.current = answer;
        await assert.rejects(client.crypto.backup.status(), MalformedResponseError);
        await assert.rejects(client.crypto.backup.useKey(privateKey), MalformedResponseError);
        assert.deepEqual(await client.crypto.backup.status({ check: false }), before);
      }
      // Nesting up to the bound is kept.
      backup.current = version('"7"', backup.publicKey, `,"x":${deep(MAX_BACKUP_AUTH_DATA_DEPTH - 1)}`);
      assert.deepEqual(await client.crypto.backup.status(), before);
    } finally {
      await client.close();
    }
    // A new client on the same store (account data is not synced here, so m.key_backup is unknown).
    const again = await open(dir, backup);
    try {
      const { version, trusted, hasKey } = await again.crypto.backup.status();
      assert.deepEqual({ version, trusted, hasKey }, { version: "7", trusted: true, hasKey: true });
    } finally {
      await again.close();
    }
  });
});
