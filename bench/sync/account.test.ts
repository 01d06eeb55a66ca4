// The sync benchmark's account, served by the devserver: the rooms, members and events the bench
// counts on, and every encrypted event decryptable with the export file's keys (so a side that
// fails to decrypt one is the side's failure, never the fixture's).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { decryptKeyExport, type ExportedRoomKey } from "../../src/crypto/key-export/index.ts";
import { InboundGroupSession } from "../../src/crypto/megolm/index.ts";
import { startDevServer } from "../../src/devserver/index.ts";
import {
  buildAccount,
  EVENTS_PER_ROOM,
  EXPORT_PASSPHRASE,
  MEMBERS_PER_ROOM,
  PASSWORD,
  READER,
  SERVER_NAME,
} from "./account.ts";

interface SyncEvent {
  type: string;
  state_key?: string;
  content: { membership?: string; ciphertext?: string; session_id?: string; body?: string };
}
interface SyncBody {
  rooms: { join: Record<string, { state: { events: SyncEvent[] }; timeline: { events: SyncEvent[] } }> };
}

describe("sync bench account", () => {
  it("serves every room's members and messages, the encrypted ones decryptable with the export", async () => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-sync-account-"));
    const dbPath = join(dir, "hs.sqlite");
    const account = buildAccount(dbPath, 3);
    assert.equal(account.events, 3 * EVENTS_PER_ROOM);
    assert.equal(account.encrypted, (3 * EVENTS_PER_ROOM) / 2);
    const server = await startDevServer({ port: 0, dbPath, serverName: SERVER_NAME });
    try {
      const api = `${server.baseUrl}/_matrix/client/v3`;
      const login = (await (
        await fetch(`${api}/login`, {
          method: "POST",
          body: JSON.stringify({
            type: "m.login.password",
            identifier: { type: "m.id.user", user: READER },
            password: PASSWORD,
          }),
        })
      ).json()) as { access_token: string };
      const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: EVENTS_PER_ROOM } } }));
      const body = (await (
        await fetch(`${api}/sync?filter=${filter}`, {
          headers: { Authorization: `Bearer ${login.access_token}` },
        })
      ).json()) as SyncBody;
      const keys = new Map(
        (decryptKeyExport(account.exportFile, EXPORT_PASSPHRASE) as ExportedRoomKey[]).map((k) => [
          k.session_id,
          InboundGroupSession.fromExport(k.session_key),
        ]),
      );
      const rooms = Object.values(body.rooms.join);
      assert.equal(rooms.length, 3);
      let decrypted = 0;
      for (const room of rooms) {
        const all = [...room.state.events, ...room.timeline.events];
        const joined = all.filter((e) => e.type === "m.room.member" && e.content.membership === "join");
        assert.equal(new Set(joined.map((e) => e.state_key)).size, MEMBERS_PER_ROOM);
        const messages = room.timeline.events.filter(
          (e) => e.type === "m.room.message" || e.type === "m.room.encrypted",
        );
        assert.equal(messages.length, EVENTS_PER_ROOM);
        for (const e of messages.filter((m) => m.type === "m.room.encrypted")) {
          const session = keys.get(e.content.session_id ?? "");
          assert.ok(session, "a key for every session");
          const plain = JSON.parse(
            new TextDecoder().decode(session.decrypt(e.content.ciphertext ?? "").plaintext),
          ) as SyncEvent;
          assert.ok(plain.content.body?.startsWith(account.secretPrefix));
          decrypted++;
        }
      }
      assert.equal(decrypted, account.encrypted);
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
