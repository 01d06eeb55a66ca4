// A room member's m.room.encryption with a rotation period the crypto store refuses (-1, 1.5,
// 2^53) failed every sync of every Keyroom client with encryption in the room: recording the
// settings threw a StoreError, the token never moved, and the same response came again. Such
// values are ignored (the defaults apply); the room is recorded as encrypted all the same.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { SCRIPTED_SESSION, tempSqliteClientStore } from "../test-support/scripted-sync.ts";

function joined(roomId: string, encryption: string): string {
  const ev = (id: string, type: string, stateKey: string, content: string) =>
    `{"event_id":"${id}","type":"${type}","state_key":"${stateKey}","sender":"@a:hs","origin_server_ts":1,"content":${content}}`;
  return (
    `"${roomId}":{"timeline":{"events":[${ev(`$m${roomId}`, "m.room.member", "@me:hs", '{"membership":"join"}')},` +
    `${ev(`$e${roomId}`, "m.room.encryption", "", encryption)}]}}`
  );
}

describe("m.room.encryption with rotation periods the crypto store refuses", () => {
  it("is recorded without them, and sync goes on", async (t) => {
    const { dir, store } = await tempSqliteClientStore(t, "keyroom-rotation-");
    const megolm = '"algorithm":"m.megolm.v1.aes-sha2"';
    const rooms = [
      joined("!neg:hs", `{${megolm},"rotation_period_ms":-1,"rotation_period_msgs":-5}`),
      joined("!frac:hs", `{${megolm},"rotation_period_ms":1.5,"rotation_period_msgs":0.5}`),
      joined("!huge:hs", `{${megolm},"rotation_period_ms":9007199254740993,"rotation_period_msgs":1e300}`),
      joined("!fine:hs", `{${megolm},"rotation_period_ms":3600000,"rotation_period_msgs":10}`),
    ];
    const bodies = [`{"next_batch":"s1","rooms":{"join":{${rooms.join(",")}}}}`];
    const client = new MatrixClient({
      homeserverUrl: SCRIPTED_SESSION.homeserverUrl,
      store,
      fillTimelineGaps: false,
      encryption: { store: { directory: dir } },
      fetch: async (url) => {
        const path = new URL(url).pathname;
        if (path.endsWith("/sync")) return new Response(bodies.shift() ?? '{"next_batch":"s2"}');
        if (path.endsWith("/keys/upload"))
          return Response.json({ one_time_key_counts: { signed_curve25519: 50 } });
        if (path.endsWith("/keys/query")) return Response.json({ device_keys: {}, failures: {} });
        return Response.json({ errcode: "M_NOT_FOUND" }, { status: 404 });
      },
    });
    t.after(() => client.close());
    await client.restore();
    await client.syncOnce({ timeoutMs: 0 });
    assert.equal((await store.loadSync())?.nextBatch, "s1");
    for (const roomId of ["!neg:hs", "!frac:hs", "!huge:hs", "!fine:hs"]) {
      assert.equal(await client.isRoomEncrypted(roomId), true, roomId);
    }
    assert.deepEqual(client.getRoom("!neg:hs")?.encryption, { algorithm: "m.megolm.v1.aes-sha2" });
    assert.deepEqual(client.getRoom("!fine:hs")?.encryption, {
      algorithm: "m.megolm.v1.aes-sha2",
      rotationPeriodMs: 3_600_000,
      rotationPeriodMessages: 10,
    });
    await client.syncOnce({ timeoutMs: 0 });
    assert.equal((await store.loadSync())?.nextBatch, "s2");
  });
});
