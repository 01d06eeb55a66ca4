// What sync has told the client so far: its rooms and the global account data. The sync handler
// writes here; the rest of the client reads (and a few calls update it before sync echoes them).
import type { BasicEvent, JsonObject } from "../../wire/index.ts";
import type { SyncSnapshot } from "../client-store/index.ts";
import { ClientError } from "../errors.ts";
import { Room } from "../rooms/room.ts";

export class SyncedState {
  readonly rooms = new Map<string, Room>();
  readonly accountData = new Map<string, BasicEvent>();

  /** Starts over from a stored snapshot (or nothing). */
  reset(snapshot?: SyncSnapshot): void {
    this.rooms.clear();
    this.accountData.clear();
    for (const snap of snapshot?.rooms ?? []) this.rooms.set(snap.roomId, Room.fromSnapshot(snap));
    for (const ev of snapshot?.accountData ?? []) this.accountData.set(ev.type, ev);
  }

  room(roomId: string): Room | undefined {
    return this.rooms.get(roomId);
  }

  /** A known room that sync says is encrypted; throws `INVALID_ARGUMENT` otherwise. */
  encryptedRoom(roomId: string): Room {
    const room = this.rooms.get(roomId);
    if (!room?.encrypted) throw new ClientError("INVALID_ARGUMENT", "not a known encrypted room");
    return room;
  }

  /** Rooms known from sync, optionally only those with the given membership. */
  roomList(membership?: Room["membership"]): Room[] {
    const all = [...this.rooms.values()];
    return membership ? all.filter((r) => r.membership === membership) : all;
  }

  accountDataContent(type: string): JsonObject | undefined {
    return this.accountData.get(type)?.content;
  }
}
