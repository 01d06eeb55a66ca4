// Room state events a fake server's /sync and /state answers carry in the client tests (a member
// joined, the room's `m.room.encryption` set by "@me:hs"), and a room as a client store keeps it.
import type { RoomSnapshot } from "../client-store/store.ts";

/** `userId`'s `m.room.member` join event (event id `$m-<userId>`). */
export const joinedMember = (userId: string) => ({
  event_id: `$m-${userId}`,
  type: "m.room.member",
  state_key: userId,
  sender: userId,
  origin_server_ts: 1,
  content: { membership: "join" },
});

/** The room's `m.room.encryption` (Megolm), sent by "@me:hs". */
export const MEGOLM_ENCRYPTION_STATE = {
  event_id: "$enc",
  type: "m.room.encryption",
  state_key: "",
  sender: "@me:hs",
  origin_server_ts: 1,
  content: { algorithm: "m.megolm.v1.aes-sha2" },
};

/** A joined room as a client store keeps it, with one state event: its name, `name`. */
export const namedRoom = (roomId: string, name: string): RoomSnapshot => ({
  roomId,
  membership: "join",
  state: [
    {
      event_id: "$n",
      type: "m.room.name",
      state_key: "",
      sender: "@a:hs",
      origin_server_ts: 1,
      content: { name },
    },
  ],
  accountData: [],
});
