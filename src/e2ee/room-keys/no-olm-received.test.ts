/**
 * An `m.no_olm` notice names no room and no session (the spec: it is about the sending device).
 * The recipient remembers it for that device, and an event of the device whose key never came,
 * sent before the notice, fails as WITHHELD with code `m.no_olm`; the older form naming a session
 * is taken too. The record is bounded.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCryptoStore } from "../../store/memory/memory-store.ts";
import type { EncryptedRoomEvent } from "../decryption/room-events.ts";
import { emptyChanges, type MachineContext } from "../machine-context.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { MAX_NO_OLM_RECEIVED, MAX_NO_OLM_RECEIVED_PER_SENDER, NoOlmReceived } from "./no-olm-received.ts";

const ROOM = "!room:x";
const T0 = 1_700_000_000_000;

/** Alice, whose device could not reach Bob's (he published no keys to claim), and Bob tracking her. */
async function aliceCannotReachBob(now: () => number) {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now });
  hs.exhaustOneTimeKeys("@bob:x", "B");
  hs.device("@bob:x", "B").fallback = undefined;
  await bob.machine.updateTrackedUsers(["@alice:x"]);
  await bob.flush();
  const sent = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "no key for Bob");
  const event: EncryptedRoomEvent = { ...sent, origin_server_ts: now() };
  return { hs, alice, bob, event };
}

const withheldCode = (r: Awaited<ReturnType<TestClient["machine"]["tryDecryptRoomEvent"]>>) =>
  r.ok ? "decrypted" : r.error.code === "WITHHELD" ? r.error.withheldCode : r.error.code;

describe("a received m.no_olm", () => {
  it("with no room or session: the device's earlier events fail as WITHHELD m.no_olm, across a restart", async () => {
    let t = T0;
    const { hs, bob, event } = await aliceCannotReachBob(() => t);
    const inbox = hs.device("@bob:x", "B").inbox;
    const notice = inbox.find((m) => m.type === "m.room_key.withheld");
    assert.equal(notice?.content.code, "m.no_olm");
    assert.equal(notice?.content.session_id, undefined, "the notice names no session");
    t += 1000;
    await bob.sync();
    assert.equal(withheldCode(await bob.machine.tryDecryptRoomEvent(event, ROOM)), "m.no_olm");

    await bob.restart();
    assert.equal(withheldCode(await bob.machine.tryDecryptRoomEvent(event, ROOM)), "m.no_olm", "remembered");

    // An event sent after the notice came is not blamed on it: its key may be on its way.
    const later = { ...event, event_id: "$later", origin_server_ts: t + 1 };
    assert.equal(withheldCode(await bob.machine.tryDecryptRoomEvent(later, ROOM)), "UNKNOWN_SESSION");
  });

  it("in the older form naming a session is taken too, for that session and the device", async () => {
    const t = T0;
    const { hs, alice, bob, event } = await aliceCannotReachBob(() => t);
    hs.device("@bob:x", "B").inbox.length = 0;
    const sessionId = (event.content as { session_id: string }).session_id;
    const content = {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: ROOM,
      session_id: sessionId,
      sender_key: alice.machine.identityKeys.curve25519,
      code: "m.no_olm",
      reason: "Unable to establish a secure channel",
    };
    await bob.machine.receiveSyncChanges({
      toDevice: [{ type: "m.room_key.withheld", sender: "@alice:x", content }],
    });
    assert.equal(withheldCode(await bob.machine.tryDecryptRoomEvent(event, ROOM)), "m.no_olm");
    const otherSession = {
      ...event,
      event_id: "$other",
      content: { ...(event.content as object), session_id: "another session" },
    };
    assert.equal(withheldCode(await bob.machine.tryDecryptRoomEvent(otherSession, ROOM)), "m.no_olm");
  });

  it("from another user naming the device's key, or a key the sender does not own, is not believed", async () => {
    const t = T0;
    const { hs, alice, bob, event } = await aliceCannotReachBob(() => t);
    hs.device("@bob:x", "B").inbox.length = 0;
    const aliceKey = alice.machine.identityKeys.curve25519;
    const notice = (sender: string, senderKey: string) => ({
      type: "m.room_key.withheld",
      sender,
      content: { algorithm: "m.megolm.v1.aes-sha2", sender_key: senderKey, code: "m.no_olm" },
    });
    await bob.machine.receiveSyncChanges({
      toDevice: [notice("@mallory:x", aliceKey), notice("@alice:x", "bm90IGhlciBrZXk")],
    });
    assert.equal(withheldCode(await bob.machine.tryDecryptRoomEvent(event, ROOM)), "UNKNOWN_SESSION");
    // Not kept for the key Alice does not own either (her device list is known).
    const naming = { ...event, content: { ...(event.content as object), sender_key: "bm90IGhlciBrZXk" } };
    assert.equal(withheldCode(await bob.machine.tryDecryptRoomEvent(naming, ROOM)), "UNKNOWN_SESSION");
  });
});

describe("NoOlmReceived", () => {
  async function context(): Promise<MachineContext> {
    const store = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B" });
    return { userId: "@bob:x", deviceId: "B", store, now: () => T0, tx: emptyChanges() };
  }

  it(`keeps at most MAX_NO_OLM_RECEIVED_PER_SENDER per user and MAX_NO_OLM_RECEIVED in all, the newest`, async () => {
    const ctx = await context();
    const notices = new NoOlmReceived(ctx);
    for (let i = 0; i < MAX_NO_OLM_RECEIVED_PER_SENDER + 3; i++)
      await notices.record("@mallory:x", `key${i}`, undefined);
    for (let i = 0; i < MAX_NO_OLM_RECEIVED + 3; i++) await notices.record(`@u${i}:x`, "key", "reason");
    await ctx.store.saveChanges(ctx.tx);
    const saved = await ctx.store.getCustomValue("keyroom.no_olm_received.v1");
    assert.ok(Array.isArray(saved) && saved.length === MAX_NO_OLM_RECEIVED, "the saved record is bounded");
    const reread = new NoOlmReceived(ctx);
    assert.equal(await reread.from("@u0:x", "key"), undefined, "the oldest were forgotten");
    assert.equal((await reread.from(`@u${MAX_NO_OLM_RECEIVED + 2}:x`, "key"))?.reason, "reason");

    const one = new NoOlmReceived(await context());
    for (let i = 0; i < MAX_NO_OLM_RECEIVED_PER_SENDER + 3; i++)
      await one.record("@mallory:x", `key${i}`, undefined);
    assert.equal(await one.from("@mallory:x", "key2"), undefined, "a user's oldest are forgotten first");
    assert.ok(await one.from("@mallory:x", "key3"));
  });

  it("reads a damaged record as empty or drops its bad entries, never throwing", async () => {
    for (const junk of [null, 7, "x", {}, [1, null, { sender: "@a:x" }, ["@a:x", "k"]]]) {
      const ctx = await context();
      await ctx.store.saveChanges({
        ...emptyChanges(),
        customValues: { "keyroom.no_olm_received.v1": junk },
      });
      assert.equal(await new NoOlmReceived(ctx).from("@a:x", "k"), undefined);
    }
  });
});
