import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { OlmMachine, RoomEventRecipients } from "../../e2ee/index.ts";
import type { StateEvent } from "../../wire/index.ts";
import type { HttpClient } from "../http.ts";
import { silentLogger } from "../logger.ts";
import { Room } from "../rooms/room.ts";
import { OutgoingRequestLoop } from "./outgoing.ts";
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

describe("RoomEncryption.encrypt", () => {
  // The member list was read once, before the send waited for the loop and fetched devices: a
  // leave that sync applied meanwhile still got the room key (and a join got none).
  it("shares with the members the room has when the key goes out, not those it had when the send began", async () => {
    const room = new Room("!r:hs", "join");
    room.applyState(state("m.room.encryption", "", megolm));
    for (const u of ["@me:hs", "@b:hs"]) room.applyState(state("m.room.member", u, { membership: "join" }));
    const planned: string[][] = [];
    const machine = {
      setRoomSettings: async () => {},
      updateTrackedUsers: async () => {},
      outgoingRequests: async () => [],
      markRequestAsSent: async () => {},
      prepareRoomEvent: async (_roomId: string, _type: string, _content: unknown, r: RoomEventRecipients) => {
        planned.push(r.members.map((m) => m.userId));
        // First the devices (a query), then the key's shares to the members passed now.
        if (planned.length === 1) {
          return { stage: "devices", requests: [{ id: "q", type: "keys_query", body: { device_keys: {} } }] };
        }
        return { stage: "ready", requests: [], content: { ciphertext: "c" } };
      },
    } as unknown as OlmMachine;
    const loop = new OutgoingRequestLoop({
      machine,
      // While the query is out, sync applies @b's leave (and @c's join) to the room.
      send: async () => {
        room.applyState(state("m.room.member", "@b:hs", { membership: "leave" }));
        room.applyState(state("m.room.member", "@c:hs", { membership: "join" }));
        return {};
      },
      onError: () => {},
    });
    const rooms = new RoomEncryption({
      machine,
      http: { request: async () => ({ chunk: [] }) } as unknown as HttpClient,
      logger: silentLogger,
      loop,
      reportError: () => {},
    });
    const out = await rooms.encrypt(room, "m.room.message", { body: "hi" });
    assert.equal(out.type, "m.room.encrypted");
    assert.deepEqual(planned.at(-1)?.sort(), ["@c:hs", "@me:hs"]);
  });
});

describe("RoomEncryption member list", () => {
  /** An encrypted room where we and @b:hs are joined, and the engine calls made for a send. */
  function setUp(members: () => StateEvent[], duringSave: () => void) {
    const room = new Room("!r:hs", "join");
    room.applyState(state("m.room.encryption", "", megolm));
    for (const u of ["@me:hs", "@b:hs"]) room.applyState(state("m.room.member", u, { membership: "join" }));
    const told: string[] = [];
    const machine = {
      setRoomSettings: async () => {},
      updateTrackedUsers: async () => {},
      outgoingRequests: async () => [],
      receiveRoomMembership: async (changes: { userId: string; membership: string }[]) => {
        duringSave();
        for (const c of changes) told.push(`${c.userId} ${c.membership}`);
      },
      prepareRoomEvent: async () => ({ stage: "ready", requests: [], content: { ciphertext: "c" } }),
    } as unknown as OlmMachine;
    const loop = new OutgoingRequestLoop({ machine, send: async () => ({}), onError: () => {} });
    const fetched: string[] = [];
    const rooms = new RoomEncryption({
      machine,
      http: { request: async () => ({ chunk: members() }) } as unknown as HttpClient,
      logger: silentLogger,
      loop,
      reportError: () => {},
      membersFetched: (_room, news) => {
        fetched.push(news.map((n) => `${n.event.state_key} ${n.previous?.content.membership ?? "-"}`).join());
      },
    });
    return { room, rooms, told, fetched };
  }

  // The room took the leave before the engine had saved it: when the engine's save failed, the next
  // fetch found the leave already applied, and the room key the leaver held was never rotated.
  it("a leave the engine failed to save is told to it again at the next send", async () => {
    let fail = true;
    const leave = state("m.room.member", "@b:hs", { membership: "leave" });
    const { room, rooms, told } = setUp(
      () => [state("m.room.member", "@me:hs", { membership: "join" }), leave],
      () => {
        if (fail) throw new Error("store write failed");
      },
    );
    await assert.rejects(rooms.encrypt(room, "m.room.message", { body: "hi" }), /store write failed/);
    assert.equal(room.getMember("@b:hs")?.membership, "join", "the room waits for the engine");
    fail = false;
    await rooms.encrypt(room, "m.room.message", { body: "hi" });
    assert.deepEqual(told, ["@b:hs leave"]);
    assert.equal(room.getMember("@b:hs")?.membership, "leave");
  });

  it("a member whose event sync brought while the engine saved keeps sync's, the newer", async () => {
    const back = state("m.room.member", "@b:hs", { membership: "join", displayname: "back" });
    const { room, rooms, told } = setUp(
      () => [state("m.room.member", "@b:hs", { membership: "leave" })],
      () => void room.applyState(back),
    );
    await rooms.encrypt(room, "m.room.message", { body: "hi" });
    assert.deepEqual(told, ["@b:hs leave"], "the engine heard of the leave (a rotation is safe)");
    assert.equal(room.getState("m.room.member", "@b:hs"), back);
  });

  it("reports what a fetch changed: members it corrected, and unknown ones only after a limited sync", async () => {
    let chunk = [
      state("m.room.member", "@b:hs", { membership: "leave" }),
      state("m.room.member", "@c:hs", { membership: "join" }),
    ];
    const { room, rooms, fetched } = setUp(
      () => chunk,
      () => {},
    );
    await rooms.encrypt(room, "m.room.message", { body: "hi" });
    // @c was there all along (a lazy-loading sync never named it): learned, not news.
    assert.deepEqual(fetched, ["@b:hs join"]);
    await rooms.encrypt(room, "m.room.message", { body: "hi" });
    assert.equal(fetched.length, 1, "fetched once while no limited sync came");
    rooms.membersMayHaveChanged([room.roomId]);
    chunk = [...chunk, state("m.room.member", "@d:hs", { membership: "leave" })];
    await rooms.encrypt(room, "m.room.message", { body: "hi" });
    assert.deepEqual(fetched, ["@b:hs join", "@d:hs -"], "@d came and went in the gap");
    rooms.membersMayHaveChanged([room.roomId]);
    await rooms.encrypt(room, "m.room.message", { body: "hi" });
    assert.equal(fetched.length, 2, "nothing applied, nothing reported");
  });
});
