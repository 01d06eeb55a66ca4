// Helpers of the Olm unwedging tests (unwedge-*.test.ts): what Keyroom sends over Olm, Keyroom
// reopened from its store, store copies aged as an older backup would be, and the m.dummy events
// Keyroom receives.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { FetchLike } from "../../src/client/http.ts";
import { MatrixClient } from "../../src/client/index.ts";
import { UNWEDGE_INTERVAL_MS } from "../../src/e2ee/index.ts";
import { JsSdkPeer, NioPeer, type Peer } from "../support/peers/index.ts";
import { type DevServerFixture, type TestClient, watch } from "./e2ee-client-helpers.ts";

/** How far back a restored copy's Olm sessions are moved: past every implementation's interval. */
export const AGE_MS = UNWEDGE_INTERVAL_MS + 10 * 60_000;

export type UnwedgingPeer = JsSdkPeer | NioPeer;

export function unwedging(peer: Peer): UnwedgingPeer {
  assert.ok(peer instanceof JsSdkPeer || peer instanceof NioPeer);
  return peer;
}

/** What Keyroom sent of Olm's kind: key claims and encrypted to-device messages (ciphertext only). */
export function wireLog() {
  const claims: Record<string, Record<string, string>>[] = [];
  const sent: { messages: Record<string, Record<string, OlmContent>> }[] = [];
  const fetchLike: FetchLike = async (input, init) => {
    const path = new URL(input).pathname;
    if (typeof init.body === "string") {
      if (path.endsWith("/keys/claim")) claims.push(JSON.parse(init.body).one_time_keys);
      if (path.includes("/sendToDevice/m.room.encrypted/")) sent.push(JSON.parse(init.body));
    }
    return fetch(input, init);
  };
  return {
    fetch: fetchLike,
    claims,
    /** Every encrypted to-device message sent, flattened: recipient, device, Olm message type. */
    messages(): { userId: string; deviceId: string; senderKey: string; types: number[] }[] {
      return sent.flatMap((s) =>
        Object.entries(s.messages).flatMap(([userId, devices]) =>
          Object.entries(devices).map(([deviceId, content]) => ({
            userId,
            deviceId,
            senderKey: content.sender_key,
            types: Object.values(content.ciphertext).map((c) => c.type),
          })),
        ),
      );
    },
  };
}

interface OlmContent {
  sender_key: string;
  ciphertext: Record<string, { type: number }>;
}

/** Reopens Keyroom's device from its store directory (as `restart`), through `fetch` if given. */
export async function reopen(fx: DevServerFixture, t: TestClient, fetch?: FetchLike): Promise<TestClient> {
  const client = new MatrixClient({
    homeserverUrl: fx.hs.baseUrl,
    syncTimeoutMs: 0,
    syncFilter: { room: { timeline: { limit: 100 } } },
    ...(fetch !== undefined ? { fetch } : {}),
    encryption: { store: { directory: t.storeDir }, restoreDeviceId: true },
  });
  fx.open.push(client);
  await client.login({ user: t.client.userId, password: "pw" });
  const again = watch(client, t.name, t.storeDir);
  assert.equal(client.deviceId, t.client.deviceId, "the same device");
  return again;
}

/** Moves every Olm session in Keyroom's SQLite store(s) under `dir` `ms` into the past. */
export async function ageKeyroomStore(dir: string, ms: number): Promise<number> {
  let aged = 0;
  for (const name of await readdir(dir)) {
    if (name.endsWith("-wal") || name.endsWith("-shm") || name.endsWith("-journal")) continue;
    let db: Database.Database;
    try {
      db = new Database(join(dir, name), { fileMustExist: true });
    } catch {
      continue;
    }
    try {
      const hasTable = db.prepare(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'olm_sessions'",
      );
      if (hasTable.get() === undefined) continue;
      aged += db
        .prepare("UPDATE olm_sessions SET created_at = created_at - ?, last_used_at = last_used_at - ?")
        .run(ms, ms).changes;
    } catch {
      // Not a SQLite file.
    } finally {
      db.close();
    }
  }
  return aged;
}

/**
 * Moves every Olm session in nio's SQLite store(s) under `dir` `ms` into the past. nio keeps a
 * session's creation time as local time text (`YYYY-MM-DD HH:MM:SS.ffffff`) and takes its last use
 * to be its creation when it loads it.
 */
export async function ageNioStore(dir: string, ms: number): Promise<number> {
  let aged = 0;
  for (const name of (await readdir(dir)).filter((n) => n.endsWith(".db"))) {
    const db = new Database(join(dir, name), { fileMustExist: true });
    try {
      const rows = db.prepare("SELECT session_id, creation_time FROM olmsessions").all() as {
        session_id: string;
        creation_time: string;
      }[];
      const update = db.prepare("UPDATE olmsessions SET creation_time = ? WHERE session_id = ?");
      for (const r of rows) {
        // Read and written as UTC: only the difference matters, and nio compares with its own clock.
        const at = Date.parse(`${r.creation_time.replace(" ", "T").slice(0, 23)}Z`);
        assert.ok(Number.isFinite(at), "nio's creation time is a date and time");
        const earlier = new Date(at - ms).toISOString().replace("T", " ").replace("Z", "000");
        aged += update.run(earlier, r.session_id).changes;
      }
    } finally {
      db.close();
    }
  }
  return aged;
}

/** The peer sends with a new Megolm session, so its room key goes out over Olm. */
export async function sendWithNewKey(peer: UnwedgingPeer, roomId: string, body: string): Promise<string> {
  await peer.discardGroupSession(roomId);
  return peer.sendText(roomId, body);
}

/** The `m.dummy` events Keyroom decrypted, from now on: sender and the sending device's Curve25519 key. */
export function keyroomDummies(kr: TestClient): { sender: string; senderKey: string | undefined }[] {
  const out: { sender: string; senderKey: string | undefined }[] = [];
  kr.client.on("toDevice", (ev) => {
    if (ev.type !== "m.dummy") return;
    const encryption = (ev as { encryption?: { senderCurve25519?: string } }).encryption;
    out.push({ sender: ev.sender, senderKey: encryption?.senderCurve25519 });
  });
  return out;
}
