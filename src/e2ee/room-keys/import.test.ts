import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decryptKeyExport, encryptKeyExport } from "../../crypto/key-export/index.ts";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { MemoryStoreData } from "../../store/index.ts";
import { MemoryCryptoStore } from "../../store/memory/memory-store.ts";
import { emptyChanges, type MachineContext } from "../machine-context.ts";
import { FakeHomeserver, joined, megolmEventIn, TestClient } from "../test-support/fake-homeserver.ts";
import { exportsOf } from "../test-support/room-key-exports.ts";
import { importRoomKey } from "./import.ts";
import { InboundSessions, SAVED_IMPORT_RECORDS } from "./inbound.ts";

/** `store`, with `seen(name)` told each time one of its methods is taken (to count reads). */
function onMethod<T extends object>(store: T, seen: (name: string | symbol) => void): T {
  return new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      seen(key);
      return value.bind(target);
    },
  });
}

/**
 * Bob's inbound sessions on a memory store whose session reads are counted; `step()` saves the
 * step's changes and settles, as the machine does after an import step.
 */
async function countedInbound() {
  const inner = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B" });
  let reads = 0;
  const store = onMethod(inner, (name) => {
    if (name === "getInboundGroupSession" || name === "getInboundGroupSessions") reads++;
  });
  const ctx: MachineContext = { userId: "@bob:x", deviceId: "B", store, now: Date.now, tx: emptyChanges() };
  const inbound = new InboundSessions(ctx);
  const step = async () => {
    await store.saveChanges(ctx.tx);
    ctx.tx = emptyChanges();
    inbound.settle();
  };
  return { inner, inbound, step, reads: () => reads };
}

describe("importRoomKeys", () => {
  it("keeps an import's sessions in memory until its step is saved, then leaves them to the store", async () => {
    const store = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B" });
    const ctx: MachineContext = { userId: "@bob:x", deviceId: "B", store, now: Date.now, tx: emptyChanges() };
    const inbound = new InboundSessions(ctx);
    const entry = (s: OutboundGroupSession) => exportsOf(s)();
    // A session in use (it came over Olm): an import must not push it out of memory.
    const inUse = OutboundGroupSession.create();
    await inbound.add(
      {
        roomId: "!r:x",
        senderKey: "c2VuZGVyLWtleQ",
        senderClaimedEd25519: "ZWQ",
        forwarded: false,
        imported: false,
        forwardingChain: [],
      },
      InboundGroupSession.fromSessionKey(inUse.sessionKey()),
    );
    const imported = OutboundGroupSession.create();
    assert.ok(await importRoomKey(inbound, entry(imported)));
    // Later keys of the same step see it (the second copy adds nothing), unsaved as it is.
    assert.equal(await importRoomKey(inbound, entry(imported)), undefined);
    assert.equal(await importRoomKey(inbound, entry(inUse)), undefined);
    assert.ok(inbound.cached("!r:x", imported.sessionId));
    assert.equal(ctx.tx.inboundGroupSessions.length, 2);
    await store.saveChanges(ctx.tx);
    inbound.settle();
    assert.equal(inbound.cached("!r:x", imported.sessionId), undefined);
    assert.ok(inbound.cached("!r:x", inUse.sessionId));
    assert.equal((await inbound.get("!r:x", imported.sessionId))?.record.imported, true);
  });

  it("keeps the records an import saved: a session's first use reads no store row, and a better copy replaces the record", async () => {
    const { inner, inbound, step, reads } = await countedInbound();
    const s = OutboundGroupSession.create();
    const at = exportsOf(s);
    assert.ok(await importRoomKey(inbound, at(3)));
    await step();
    assert.ok(await importRoomKey(inbound, at(1)));
    await step();
    const before = reads();
    assert.equal(inbound.cached("!r:x", s.sessionId), undefined);
    assert.equal((await inbound.get("!r:x", s.sessionId))?.session.firstKnownIndex, 1);
    assert.equal(reads(), before);
    assert.equal((await inner.getInboundGroupSession("!r:x", s.sessionId))?.firstKnownIndex, 1);
  });

  it("keeps at most SAVED_IMPORT_RECORDS records, the newest: an older one is read from the store again", async () => {
    const { inbound, step, reads } = await countedInbound();
    const sessions = Array.from({ length: SAVED_IMPORT_RECORDS + 1 }, () => OutboundGroupSession.create());
    for (const s of sessions) assert.ok(await importRoomKey(inbound, exportsOf(s)()));
    await step();
    const newest = sessions.at(-1)!;
    const oldest = sessions[0]!;
    let before = reads();
    assert.equal((await inbound.get("!r:x", newest.sessionId))?.session.sessionId, newest.sessionId);
    assert.equal(reads(), before, "the newest record is kept");
    before = reads();
    assert.equal((await inbound.get("!r:x", oldest.sessionId))?.session.sessionId, oldest.sessionId);
    assert.equal(reads(), before + 1, "the oldest one was dropped past the bound: read from the store");
  });

  it("an import's kept records and replays: a new session's are not looked for, a better copy of a used one still refuses a replay", async () => {
    const hs = new FakeHomeserver();
    const data = new MemoryStoreData();
    let replayReads = 0;
    let oneByOne = 0;
    const open = async () =>
      onMethod(await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B", data }), (name) => {
        if (name === "getReplays" || name === "getReplaysOfSessions" || name === "getReplay") replayReads++;
        if (name === "getReplays" || name === "getReplay") oneByOne++;
      });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" }, open);
    const s = OutboundGroupSession.create();
    const at = exportsOf(s);
    const first = megolmEventIn(s, "!r:x", "@alice:x", "A", "first");
    const second = megolmEventIn(s, "!r:x", "@alice:x", "A", "second");
    assert.equal((await bob.machine.importRoomKeys([at(1)])).imported, 1);
    const before = replayReads;
    const [one] = await bob.machine.tryDecryptRoomEvents([{ event: second, roomId: "!r:x" }]);
    assert.equal(one?.ok && one.event.content.body, "second");
    assert.equal(replayReads, before, "no store ever held the session: no replay record to look for");
    await bob.restart();
    // A better copy of the session used before the restart: its replay records are in the store.
    assert.equal((await bob.machine.importRoomKeys([at(0)])).imported, 1);
    const replayed = { ...second, event_id: "$replayed" };
    const outcomes = await bob.machine.tryDecryptRoomEvents([
      { event: first, roomId: "!r:x" },
      { event: replayed, roomId: "!r:x" },
    ]);
    assert.equal(outcomes[0]?.ok && outcomes[0].event.content.body, "first");
    assert.equal(!outcomes[1]?.ok && outcomes[1]?.error.code, "REPLAYED");
    assert.equal(oneByOne, 0, "the kept record's replay records were read ahead with the batch");
  });

  it("imports valid keys, skips bad entries, and decrypts pending events", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const session = OutboundGroupSession.create();
    const exportOf = exportsOf(session); // before it encrypts
    const ciphertext = session.encrypt(
      JSON.stringify({ type: "m.room.message", content: { body: "from the past" }, room_id: "!r:x" }),
    );
    const event = {
      event_id: "$old",
      sender: "@alice:x",
      type: "m.room.encrypted",
      content: {
        algorithm: "m.megolm.v1.aes-sha2",
        ciphertext,
        session_id: session.sessionId,
        device_id: "A",
      },
    };
    await assert.rejects(bob.machine.decryptRoomEvent(event, "!r:x"), { code: "UNKNOWN_SESSION" });
    const exported = exportOf();
    const progress: number[] = [];
    const result = await bob.machine.importRoomKeys(
      [exported, { ...exported, session_id: "wrong" }, { nonsense: true }, exported],
      (done) => progress.push(done),
    );
    assert.equal(result.imported, 1);
    assert.equal(result.total, 4);
    assert.deepEqual(progress, [4]);
    assert.equal(result.redecrypted[0]?.content.body, "from the past");
    assert.equal(result.redecrypted[0]?.trust, "unknown_device");
    await bob.restart();
    assert.equal((await bob.machine.decryptRoomEvent(event, "!r:x")).content.body, "from the past");
  });

  it("without rooms, exports every key held, read a page at a time", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.sync();
    const rooms = ["!r1:x", "!r2:x", "!r3:x"];
    for (const roomId of rooms) await alice.sendMessage(roomId, joined("@alice:x", "@bob:x"), roomId);
    await bob.sync();
    const sessionsOf = (keys: readonly { room_id: string; session_id: string }[]) =>
      keys.map((k) => `${k.room_id} ${k.session_id}`).sort();
    const all = await bob.machine.exportRoomKeys();
    assert.deepEqual(
      all.map((k) => k.room_id),
      rooms,
    );
    assert.equal(await bob.machine.roomKeyCount(), 3);
    // Rooms we no longer know of are included; the room-filtered form still narrows.
    assert.deepEqual(sessionsOf(await bob.machine.exportRoomKeys(rooms)), sessionsOf(all));
    assert.deepEqual(sessionsOf(await bob.machine.exportRoomKeys(["!r2:x"])), sessionsOf(all.slice(1, 2)));
    for (const pageSize of [1, 2, 3]) {
      const pages = [];
      for await (const page of bob.machine.exportAllRoomKeys({ pageSize })) pages.push(page);
      assert.ok(pages.every((p) => p.length <= pageSize));
      assert.deepEqual(pages.flat(), all, `page size ${pageSize}`);
    }
    await assert.rejects(
      async () => {
        for await (const _ of bob.machine.exportAllRoomKeys({ pageSize: 0 })) break;
      },
      { name: "E2eeError", code: "BAD_ARGUMENT" },
    );
    // Alice holds her own sessions' inbound copies: all three export too.
    assert.equal((await alice.machine.exportRoomKeys()).length, 3);
  });

  it("exports a room's keys into a file another device imports", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.sync();
    const event = await alice.sendMessage("!r:x", joined("@alice:x", "@bob:x"), "exported history");
    await bob.sync();
    const keys = await bob.machine.exportRoomKeys(["!r:x", "!empty:x"]);
    assert.equal(keys.length, 1);
    const file = encryptKeyExport(keys, "passphrase", { rounds: 1000 });
    const bob2 = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B2" });
    const { imported } = await bob2.machine.importRoomKeys(decryptKeyExport(file, "passphrase"));
    assert.equal(imported, 1);
    await bob2.machine.updateTrackedUsers(["@alice:x"]);
    await bob2.flush();
    const decrypted = await bob2.machine.decryptRoomEvent(event, "!r:x");
    assert.equal(decrypted.content.body, "exported history");
    assert.equal(decrypted.senderDevice, "A");
    assert.equal(decrypted.trust, "unverified", "imported keys say who, not that it is verified");
  });
});
