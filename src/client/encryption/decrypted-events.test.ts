// The events handed back after a sync for events that failed earlier, as the application gets them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DecryptionError } from "../../e2ee/index.ts";
import type { RoomEvent } from "../events/types.ts";
import { Room } from "../rooms/room.ts";
import { emitLaterOutcomes, type LaterOutcomesHost } from "./decrypted-events.ts";

const ROOM = "!room:x";
const encrypted = {
  event_id: "$late",
  sender: "@alice:x",
  type: "m.room.encrypted",
  origin_server_ts: 1,
  room_id: ROOM,
  content: { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "AwgA", session_id: "S", device_id: "A" },
};

function host(): LaterOutcomesHost & { emitted: [string, RoomEvent][] } {
  const room = new Room(ROOM);
  const emitted: [string, RoomEvent][] = [];
  return {
    emitted,
    getRoom: (roomId) => (roomId === ROOM ? room : undefined),
    emitDecrypted: async (_room, event) => void emitted.push(["room.decrypted", event]),
    emitUndecryptable: async (_room, event) => void emitted.push(["room.undecryptable", event]),
  };
}

describe("events that failed earlier", () => {
  it("a withheld key: the event again, whole, with the sender's code", async () => {
    const h = host();
    const error = new DecryptionError(
      "WITHHELD",
      "the sender withheld the key for this message",
      "m.unverified",
    );
    await emitLaterOutcomes(h, { decrypted: [], withheld: [{ roomId: ROOM, event: encrypted, error }] });
    assert.equal(h.emitted.length, 1);
    const [name, event] = h.emitted[0] as [string, RoomEvent];
    assert.equal(name, "room.undecryptable");
    assert.deepEqual(
      [event.eventId, event.sender, event.type, event.roomId, event.originServerTs],
      ["$late", "@alice:x", "m.room.encrypted", ROOM, 1],
    );
    assert.deepEqual(event.encryption, {
      decrypted: false,
      code: "WITHHELD",
      reason: "the sender withheld the key for this message",
      withheldCode: "m.unverified",
    });
  });

  it("skips rooms the client does not know and events that are not client events", async () => {
    const h = host();
    const error = new DecryptionError("WITHHELD", "withheld", "m.blacklisted");
    await emitLaterOutcomes(h, {
      decrypted: [],
      withheld: [
        { roomId: "!elsewhere:x", event: encrypted, error },
        { roomId: ROOM, event: { ...encrypted, event_id: 7 } as never, error },
      ],
    });
    assert.deepEqual(h.emitted, []);
  });
});
