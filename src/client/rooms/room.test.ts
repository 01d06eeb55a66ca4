import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StateEvent } from "../../wire/index.ts";
import { Room } from "./room.ts";

const state = (
  type: string,
  stateKey: string,
  content: Record<string, unknown>,
  id = `$${type}${stateKey}`,
): StateEvent => ({
  event_id: id,
  type,
  state_key: stateKey,
  sender: "@a:hs",
  origin_server_ts: 1,
  content,
});

describe("Room", () => {
  it("derives name, encryption, members, tombstone and predecessor from state", () => {
    const room = new Room("!new:hs");
    room.applyState(
      state("m.room.create", "", { room_version: "11", predecessor: { room_id: "!old:hs", event_id: "$t" } }),
    );
    room.applyState(state("m.room.canonical_alias", "", { alias: "#a:hs" }));
    assert.equal(room.name, "#a:hs");
    room.applyState(state("m.room.name", "", { name: "Lobby" }));
    room.applyState(
      state("m.room.encryption", "", { algorithm: "m.megolm.v1.aes-sha2", rotation_period_msgs: 50 }),
    );
    room.applyState(state("m.room.member", "@a:hs", { membership: "join", displayname: "A" }));
    room.applyState(state("m.room.member", "@b:hs", { membership: "invite" }));
    room.applyState(state("m.room.member", "@c:hs", { membership: "bogus" }));
    room.applyState(state("m.room.tombstone", "", { replacement_room: "!newer:hs", body: "moved" }));
    assert.equal(room.name, "Lobby");
    assert.equal(room.roomVersion, "11");
    assert.deepEqual(room.encryption, { algorithm: "m.megolm.v1.aes-sha2", rotationPeriodMessages: 50 });
    assert.deepEqual(room.joinedMemberIds, ["@a:hs"]);
    assert.deepEqual(room.joinedOrInvitedMemberIds.sort(), ["@a:hs", "@b:hs"]);
    assert.equal(room.getMember("@a:hs")?.displayName, "A");
    assert.equal(room.getMember("@c:hs"), undefined);
    assert.deepEqual(room.tombstone, {
      replacementRoomId: "!newer:hs",
      body: "moved",
      eventId: "$m.room.tombstone",
    });
    assert.deepEqual(room.predecessor, { roomId: "!old:hs", eventId: "$t" });
  });

  it("ignores state with the wrong value types", () => {
    const room = new Room("!r:hs");
    room.applyState(state("m.room.name", "", { name: 42 }));
    room.applyState(state("m.room.encryption", "", { algorithm: ["x"] }));
    room.applyState(state("m.room.tombstone", "", { replacement_room: null }));
    room.applyState(state("m.room.create", "", { predecessor: "!old:hs" }));
    assert.equal(room.name, undefined);
    assert.equal(room.encryption, undefined);
    assert.equal(room.encrypted, true, "an m.room.encryption naming no algorithm still encrypts the room");
    assert.equal(room.tombstone, undefined);
    assert.equal(room.predecessor, undefined);
  });

  it("takes rotation periods only as non-negative safe integers (what the crypto store keeps)", () => {
    const room = new Room("!r:hs");
    const megolm = "m.megolm.v1.aes-sha2";
    for (const odd of [-1, 1.5, 2 ** 53, Number.MAX_VALUE, "10", null]) {
      room.applyState(
        state("m.room.encryption", "", {
          algorithm: megolm,
          rotation_period_ms: odd,
          rotation_period_msgs: odd,
        }),
      );
      assert.deepEqual(room.encryption, { algorithm: megolm }, String(odd));
    }
    room.applyState(
      state("m.room.encryption", "", {
        algorithm: megolm,
        rotation_period_ms: 0,
        rotation_period_msgs: 2 ** 53 - 1,
      }),
    );
    assert.deepEqual(room.encryption, {
      algorithm: megolm,
      rotationPeriodMs: 0,
      rotationPeriodMessages: 2 ** 53 - 1,
    });
  });

  it("stays encrypted whatever a later m.room.encryption holds, in its state or its invite", () => {
    for (const junk of [{}, { algorithm: 5 }, { algorithm: "" }, { algorithm: ["m.megolm.v1.aes-sha2"] }]) {
      const room = new Room("!r:hs", "join");
      assert.equal(room.encrypted, false);
      room.applyState(state("m.room.encryption", "", { algorithm: "m.megolm.v1.aes-sha2" }));
      room.applyState(state("m.room.encryption", "", junk, "$junk"));
      assert.equal(room.encrypted, true, JSON.stringify(junk));
      assert.equal(Room.fromSnapshot(room.toSnapshot()).encrypted, true, "after a restart too");
      const invited = new Room("!i:hs", "invite");
      invited.setInviteState([{ type: "m.room.encryption", state_key: "", sender: "@a:hs", content: junk }]);
      assert.equal(invited.encrypted, true, JSON.stringify(junk));
    }
    const other = new Room("!o:hs", "join");
    other.applyState(state("m.room.encryption", "@a:hs", { algorithm: "m.megolm.v1.aes-sha2" }));
    assert.equal(other.encrypted, false, 'only the state key "" counts');
  });

  it("round-trips through a snapshot", () => {
    const room = new Room("!r:hs", "join");
    room.applyState(state("m.room.name", "", { name: "N" }));
    room.setAccountData({ type: "m.tag", content: { tags: {} } });
    room.prevBatch = "p1";
    const copy = Room.fromSnapshot(room.toSnapshot());
    assert.deepEqual(copy.toSnapshot(), room.toSnapshot());
    assert.equal(copy.name, "N");
  });
});
