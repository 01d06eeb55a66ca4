import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { OlmMachine } from "../../e2ee/index.ts";
import type { StateEvent } from "../../wire/index.ts";
import type { HttpClient } from "../http.ts";
import { silentLogger } from "../logger.ts";
import { Room } from "../rooms/room.ts";
import type { OutgoingRequestLoop } from "./outgoing.ts";
import { RoomEncryption } from "./room-encryption.ts";

const state = (type: string, stateKey: string, content: Record<string, unknown>): StateEvent => ({
  event_id: `$${type}${stateKey}${JSON.stringify(content)}`,
  type,
  state_key: stateKey,
  sender: "@a:hs",
  origin_server_ts: 1,
  content,
});
const megolm = { algorithm: "m.megolm.v1.aes-sha2" };

/** RoomEncryption over an engine that records what it is told (only `record` is used here). */
function roomEncryption(): { rooms: RoomEncryption; recorded: string[] } {
  const recorded: string[] = [];
  const machine = {
    setRoomSettings: async (roomId: string) => {
      recorded.push(roomId);
    },
    updateTrackedUsers: async () => {},
  } as unknown as OlmMachine;
  const rooms = new RoomEncryption({
    machine,
    http: {} as HttpClient,
    logger: silentLogger,
    loop: {} as OutgoingRequestLoop,
    reportError: () => {},
  });
  return { rooms, recorded };
}

describe("RoomEncryption.settingsChanged", () => {
  it("follows the room's m.room.encryption, its invite state and resets, whatever was asked before", async () => {
    const { rooms, recorded } = roomEncryption();
    const room = new Room("!r:hs", "join");
    room.applyState(state("m.room.create", "", {}));
    // Not encrypted: nothing to record, asked twice (the second answer comes from the cache).
    assert.equal(rooms.settingsChanged(room), false);
    assert.equal(rooms.settingsChanged(room), false);
    room.applyState(state("m.room.encryption", "", megolm));
    assert.equal(rooms.settingsChanged(room), true);
    await rooms.record(room, { fromSync: true, track: false });
    assert.deepEqual(recorded, ["!r:hs"]);
    assert.equal(rooms.settingsChanged(room), false);
    assert.equal(rooms.settingsChanged(room), false);
    // Other state leaves the settings as they were.
    room.applyState(state("m.room.name", "", { name: "x" }));
    assert.equal(rooms.settingsChanged(room), false);
    room.applyState(state("m.room.encryption", "", { ...megolm, rotation_period_msgs: 10 }));
    assert.equal(rooms.settingsChanged(room), true);
    await rooms.record(room, { fromSync: true, track: false });
    assert.equal(rooms.settingsChanged(room), false);
    // Another process wrote: everything is recorded again.
    rooms.reset();
    assert.equal(rooms.settingsChanged(room), true);
  });

  it("an m.room.encryption naming no algorithm leaves nothing to record: not asked again at every sync", async () => {
    const { rooms, recorded } = roomEncryption();
    const room = new Room("!r:hs", "join");
    room.applyState(state("m.room.encryption", "", megolm));
    await rooms.record(room, { fromSync: true, track: false });
    // A member's junk replaces it: the room stays encrypted, but there are no settings to record.
    room.applyState(state("m.room.encryption", "", {}));
    assert.equal(room.encrypted, true);
    assert.equal(rooms.settingsChanged(room), false);
    assert.equal(rooms.settingsChanged(room), false);
    assert.deepEqual(recorded, ["!r:hs"]);
    // Settings that can be recorded again are seen at once.
    room.applyState(state("m.room.encryption", "", { ...megolm, rotation_period_msgs: 10 }));
    assert.equal(rooms.settingsChanged(room), true);
  });

  it("sees the algorithm named in an invite's stripped state", () => {
    const { rooms } = roomEncryption();
    const room = new Room("!i:hs", "invite");
    assert.equal(rooms.settingsChanged(room), false);
    room.setInviteState([{ type: "m.room.encryption", state_key: "", sender: "@a:hs", content: megolm }]);
    assert.equal(rooms.settingsChanged(room), true);
    room.setMembership("leave");
    assert.equal(rooms.settingsChanged(room), false);
  });
});
