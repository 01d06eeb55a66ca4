import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { HELD_TRANSACTIONS_DIR, HeldTransactions } from "./held-transactions.ts";
import { parseTransaction } from "./transaction.ts";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const newDataDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), "keyroom-held-"));
  dirs.push(d);
  return d;
};

const event = (body: string) => ({
  type: "m.room.message",
  room_id: "!r:x",
  sender: "@u:x",
  event_id: `$${body}`,
  origin_server_ts: 1,
  content: { msgtype: "m.text", body },
});

describe("held transactions", () => {
  it("keeps room parts in the order taken, checked again when read, and forgets each when released", async () => {
    const held = new HeldTransactions(newDataDir());
    assert.deepEqual(await held.list(() => assert.fail()), [], "nothing held: no folder needed");
    await held.hold(
      parseTransaction({
        events: [event("one")],
        "de.sorunome.msc2409.to_device": [
          { type: "m.room.encrypted", sender: "@u:x", to_user_id: "@b:x", to_device_id: "D", content: {} },
        ],
      }),
    );
    await held.hold(parseTransaction({ events: [], "de.sorunome.msc2409.to_device": [] }));
    await held.hold(parseTransaction({ events: [event("two")], ephemeral: [] }));
    const parts = await held.list(() => assert.fail());
    assert.deepEqual(
      parts.map((p) => p.txn.events.map((e) => e.content.body)),
      [["one"], ["two"]],
      "a transaction without a room part is not held",
    );
    assert.deepEqual(parts[0]?.txn.toDevice, [], "only the room part is kept");
    await held.release(parts[0]?.name ?? "");
    assert.deepEqual(
      (await held.list(() => assert.fail())).map((p) => p.name),
      [parts[1]?.name],
    );
  });

  it("sets a file that does not parse aside as .bad, once, and reads the others", async () => {
    const dataDir = newDataDir();
    const held = new HeldTransactions(dataDir);
    await held.hold(parseTransaction({ events: [event("good")] }));
    const folder = join(dataDir, HELD_TRANSACTIONS_DIR);
    writeFileSync(join(folder, "000000000000000-000000000.json"), "{ not json");
    const bad: string[] = [];
    const parts = await held.list((name) => bad.push(name));
    assert.deepEqual(bad, ["000000000000000-000000000"]);
    assert.deepEqual(
      parts.map((p) => p.txn.events[0]?.content.body),
      ["good"],
    );
    assert.ok(readdirSync(folder).includes("000000000000000-000000000.bad"));
    await held.list(() => assert.fail("reported twice"));
  });
});

describe("held transaction IDs", () => {
  it("holds a retried transaction once until it is handled, then forgets its ID", async () => {
    const held = new HeldTransactions(newDataDir());
    const txn = parseTransaction({ events: [event("once")] });
    await held.holdOnce("t1", txn);
    await held.holdOnce("t1", txn);
    assert.equal((await held.list(() => assert.fail())).length, 1, "a retry is not held twice");
    assert.ok(held.isHeld("t1"));
    held.handled("t1");
    assert.equal(held.unhandled, 0, "nothing remembered per handled transaction");
    assert.ok(!held.isHeld("t1"));
    for (let i = 0; i < 50; i++) {
      await held.holdOnce(`n${i}`, parseTransaction({ events: [] }));
      held.handled(`n${i}`);
    }
    assert.equal(held.unhandled, 0);
  });
});
