// A key backup too large for one answer (`GET /room_keys/keys` over MAX_BACKUP_RESPONSE_BYTES,
// which the spec does not paginate) comes down room by room over the rooms the client knows. The
// restore used to fail with the answer's size, and the user could not get their history back.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { encryptKeyBackupData, MEGOLM_BACKUP_V1_ALGORITHM } from "../../crypto/backup/index.ts";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { PkDecryption, PkEncryption } from "../../crypto/pk/index.ts";
import { MatrixClient } from "../client.ts";
import { SqliteClientStore } from "../client-store/sqlite-store.ts";
import { ClientError } from "../errors.ts";
import { type FetchLike, MAX_BACKUP_RESPONSE_BYTES, MAX_JSON_RESPONSE_BYTES } from "../http.ts";
import { SCRIPTED_SESSION } from "../test-support/scripted-sync.ts";

const me = SCRIPTED_SESSION.userId;
const JOINED = "!joined:hs";
const INVITED = "!invited:hs";
const LEFT = "!left:hs";
/** Known to the client, but its own answer is over the bound too. */
const HUGE = "!huge:hs";
/** In the backup, unknown to the client. */
const UNKNOWN = "!unknown:hs";

/**
 * `json` after `padding` bytes of white space (JSON all the same), or with no `json`, a body of
 * more than MAX_BACKUP_RESPONSE_BYTES: one shared chunk of spaces, so it costs no memory here.
 */
function padded(padding: number, json?: unknown): Response {
  const chunk = new Uint8Array(1024 * 1024).fill(0x20);
  const end = json === undefined ? undefined : new TextEncoder().encode(JSON.stringify(json));
  let sent = 0;
  return new Response(
    new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= padding) {
          if (end !== undefined) controller.enqueue(end);
          controller.close();
        } else controller.enqueue(chunk.subarray(0, Math.min(chunk.byteLength, padding - sent)));
        sent += chunk.byteLength;
      },
    }),
    { headers: { "content-type": "application/json" } },
  );
}

const oversized = () => padded(MAX_BACKUP_RESPONSE_BYTES + 1);

const member = (id: string, membership: string) => ({
  event_id: id,
  type: "m.room.member",
  state_key: me,
  sender: me,
  origin_server_ts: 1,
  content: { membership },
});

const SYNC = {
  next_batch: "s1",
  rooms: {
    join: {
      [JOINED]: { timeline: { events: [member("$j", "join")] } },
      [HUGE]: { timeline: { events: [member("$h", "join")] } },
    },
    invite: {
      [INVITED]: {
        invite_state: {
          events: [
            { type: "m.room.member", state_key: me, sender: "@mod:hs", content: { membership: "invite" } },
          ],
        },
      },
    },
    leave: { [LEFT]: { timeline: { events: [member("$l", "leave")] } } },
  },
};

/** A backup under `key` with `perRoom` sessions in each room. */
function backup(key: PkDecryption, perRoom: number): Record<string, Record<string, unknown>> {
  const encryption = new PkEncryption(key.publicKey);
  const sender = PkDecryption.create().publicKey;
  const rooms: Record<string, Record<string, unknown>> = {};
  for (const room of [JOINED, INVITED, LEFT, HUGE, UNKNOWN]) {
    const sessions: Record<string, unknown> = {};
    for (let i = 0; i < perRoom; i++) {
      const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
      sessions[session.sessionId] = encryptKeyBackupData(
        encryption,
        {
          algorithm: "m.megolm.v1.aes-sha2",
          sender_key: sender,
          session_key: session.exportAtFirstKnownIndex(),
          sender_claimed_keys: {},
          forwarding_curve25519_key_chain: [],
        },
        { firstMessageIndex: 0, forwardedCount: 0, isVerified: false },
      );
    }
    rooms[room] = sessions;
  }
  return rooms;
}

/** The homeserver: `/sync` once, the backup's version, and its keys (the whole too large). */
function server(
  key: PkDecryption,
  rooms: Record<string, Record<string, unknown>>,
  asked: string[],
  whole: () => Response = oversized,
): FetchLike {
  const prefix = "/_matrix/client/v3/room_keys/keys";
  return async (url, init) => {
    const p = decodeURIComponent(new URL(url).pathname);
    if (p.endsWith("/sync")) return Response.json(SYNC);
    if (p.endsWith("/room_keys/version") && init.method === "GET") {
      const count = Object.values(rooms).reduce((n, s) => n + Object.keys(s).length, 0);
      return Response.json({
        version: "1",
        algorithm: MEGOLM_BACKUP_V1_ALGORITHM,
        auth_data: { public_key: key.publicKey },
        count,
        etag: "e",
      });
    }
    if (p.startsWith(prefix) && init.method === "GET") {
      asked.push(p.slice(prefix.length));
      if (p === prefix) return whole();
      const room = p.slice(prefix.length + 1);
      if (room === HUGE) return oversized();
      return Response.json({ sessions: rooms[room] ?? {} });
    }
    if (p.endsWith("/keys/upload")) return Response.json({ one_time_key_counts: { signed_curve25519: 50 } });
    if (p.endsWith("/keys/query")) return Response.json({ device_keys: { [me]: {} } });
    if (p.endsWith("/filter")) return Response.json({ filter_id: "f" });
    return Response.json({ errcode: "M_NOT_FOUND", error: "not here" }, { status: 404 });
  };
}

async function open(dir: string, fetch: FetchLike): Promise<MatrixClient> {
  const store = await SqliteClientStore.open(join(dir, "client.sqlite3"));
  await store.saveSession({ ...SCRIPTED_SESSION });
  const client = new MatrixClient({
    homeserverUrl: SCRIPTED_SESSION.homeserverUrl,
    store,
    fetch,
    fillTimelineGaps: false,
    encryption: { store: { directory: dir } },
  });
  await client.restore();
  await client.syncOnce();
  return client;
}

describe("restoring a key backup too large for one answer", () => {
  it("comes down room by room over the rooms the client knows; a room too large is reported", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-backup-large-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const key = PkDecryption.create();
    const perRoom = 3;
    const rooms = backup(key, perRoom);
    const asked: string[] = [];
    const client = await open(dir, server(key, rooms, asked));
    try {
      const progress: [number, number][] = [];
      const result = await client.crypto.backup.restore({
        key: key.exportPrivateKey(),
        onProgress: (done, total) => void progress.push([done, total]),
      });
      assert.equal(result.download, "per_room");
      assert.deepEqual(result.roomsTooLarge, [HUGE]);
      // The joined, invited and left rooms' keys, not the unknown room's (never asked for).
      assert.deepEqual([result.imported, result.total, result.failed], [3 * perRoom, 3 * perRoom, 0]);
      assert.deepEqual(asked.sort(), ["", `/${HUGE}`, `/${INVITED}`, `/${JOINED}`, `/${LEFT}`].sort());
      const held = await client.crypto.machine.exportRoomKeys();
      assert.deepEqual(
        held.map((k) => k.room_id).sort(),
        [JOINED, INVITED, LEFT].flatMap((room) => Array<string>(perRoom).fill(room)).sort(),
      );
      // Keys handled of the backup's count (five rooms' keys), room after room.
      assert.deepEqual(progress.at(-1), [3 * perRoom, 5 * perRoom]);
      assert.ok(progress.every(([done], i) => i === 0 || done >= (progress[i - 1]?.[0] ?? 0)));
    } finally {
      await client.close();
    }
  });

  it("one room's answer over the bound fails with TOO_LARGE", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-backup-large-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const key = PkDecryption.create();
    const client = await open(dir, server(key, backup(key, 1), []));
    try {
      await assert.rejects(
        client.crypto.backup.restore({ key: key.exportPrivateKey(), roomId: HUGE }),
        (e: unknown) => e instanceof ClientError && e.code === "TOO_LARGE",
      );
      const room = await client.crypto.backup.restore({ key: key.exportPrivateKey(), roomId: JOINED });
      assert.deepEqual([room.download, room.imported], ["whole", 1]);
    } finally {
      await client.close();
    }
  });

  it("reads a whole answer over MAX_JSON_RESPONSE_BYTES in one piece", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-backup-large-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const key = PkDecryption.create();
    const rooms = backup(key, 1);
    const body = {
      rooms: Object.fromEntries(Object.entries(rooms).map(([room, sessions]) => [room, { sessions }])),
    };
    const asked: string[] = [];
    const client = await open(
      dir,
      server(key, rooms, asked, () => padded(MAX_JSON_RESPONSE_BYTES, body)),
    );
    try {
      const result = await client.crypto.backup.restore({ key: key.exportPrivateKey() });
      assert.deepEqual([result.download, result.imported, result.roomsTooLarge], ["whole", 5, []]);
      assert.deepEqual(asked, [""]);
    } finally {
      await client.close();
    }
  });
});
