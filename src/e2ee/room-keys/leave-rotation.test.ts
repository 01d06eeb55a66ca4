import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EncryptedRoomEvent } from "../decryption/room-events.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:x";
const sessionOf = (e: EncryptedRoomEvent): string => (e.content as { session_id: string }).session_id;

async function trio() {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  const carol = await TestClient.create(hs, { userId: "@carol:x", deviceId: "C" });
  await bob.sync();
  await carol.sync();
  return { alice, bob, carol };
}

describe("a user seen leaving rotates the room key (spec v1.19)", () => {
  it("even one we never shared it with: another member's history bundle may have carried it", async () => {
    const { alice, bob, carol } = await trio();
    const members = joined("@alice:x", "@bob:x");
    const first = await alice.sendMessage(ROOM, members, "before carol");
    await bob.sync();
    // Bob invites Carol and sends her the room's shareable keys, Alice's among them (MSC4268; an
    // export stands in for his bundle). Carol leaves before Alice sends again: Alice never shared
    // with her, so her devices are not among the session's holders.
    const { imported } = await carol.machine.importRoomKeys(await bob.machine.exportRoomKeys([ROOM]));
    assert.equal(imported, 1);
    await alice.machine.receiveRoomMembership([
      { roomId: ROOM, userId: "@carol:x", membership: "invite" },
      { roomId: ROOM, userId: "@carol:x", membership: "leave" },
    ]);
    const second = await alice.sendMessage(ROOM, members, "after carol left");
    assert.notEqual(sessionOf(second), sessionOf(first));
    await assert.rejects(carol.machine.decryptRoomEvent(second, ROOM), { code: "UNKNOWN_SESSION" });
    await bob.sync();
    assert.equal((await bob.machine.decryptRoomEvent(second, ROOM)).content.body, "after carol left");
  });

  it("on a ban too, but not on joins and invites, nor in rooms not recorded as encrypted", async () => {
    const { alice } = await trio();
    const members = joined("@alice:x", "@bob:x");
    const first = await alice.sendMessage(ROOM, members, "1");
    await alice.machine.receiveRoomMembership([
      { roomId: ROOM, userId: "@carol:x", membership: "invite" },
      { roomId: ROOM, userId: "@carol:x", membership: "join" },
      { roomId: "!elsewhere:x", userId: "@carol:x", membership: "leave" },
    ]);
    const second = await alice.sendMessage(ROOM, members, "2");
    assert.equal(sessionOf(second), sessionOf(first));
    await alice.machine.receiveRoomMembership([{ roomId: ROOM, userId: "@carol:x", membership: "ban" }]);
    const third = await alice.sendMessage(ROOM, members, "3");
    assert.notEqual(sessionOf(third), sessionOf(second));
  });
});
