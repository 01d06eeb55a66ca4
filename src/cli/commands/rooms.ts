// rooms, create-room, join, invite, leave. None of them syncs, so they never consume messages
// that `tail` has yet to show.
import { type MatrixClient, printable, Room } from "../../index.ts";
import { jsonLine, roomLine } from "../output.ts";
import { openSession } from "../session.ts";
import type { CommandIo } from "./io.ts";

async function withClient<T>(profileDir: string, fn: (client: MatrixClient) => Promise<T>): Promise<T> {
  const { client } = await openSession(profileDir, "plain");
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** `#alias:server` → room ID; room IDs pass through. */
export async function resolveRoom(client: MatrixClient, room: string): Promise<string> {
  return room.startsWith("#") ? (await client.resolveRoomAlias(room)).roomId : room;
}

/** `keyroom rooms`: one JSON line per joined room, read from the server's current state. */
export async function roomsCommand(args: { profileDir: string }, io: CommandIo): Promise<void> {
  await withClient(args.profileDir, async (client) => {
    for (const roomId of await client.joinedRoomIds()) {
      const room = new Room(roomId);
      for (const ev of await client.fetchRoomState(roomId)) room.applyState(ev);
      io.out(jsonLine(roomLine(room)));
    }
  });
}

export interface CreateRoomArgs {
  profileDir: string;
  name?: string;
  encrypted: boolean;
  invite: string[];
}

/** `keyroom create-room`: prints the new room ID alone. */
export async function createRoomCommand(args: CreateRoomArgs, io: CommandIo): Promise<void> {
  await withClient(args.profileDir, async (client) => {
    const roomId = await client.createRoom({
      ...(args.name !== undefined ? { name: args.name } : {}),
      encrypted: args.encrypted,
      invite: args.invite,
    });
    io.out(`${printable(roomId)}\n`);
  });
}

/** `keyroom join`: accepts a room ID or alias; prints the joined room ID. */
export async function joinCommand(args: { profileDir: string; room: string }, io: CommandIo): Promise<void> {
  await withClient(args.profileDir, async (client) => {
    io.out(`${printable(await client.joinRoom(args.room))}\n`);
  });
}

export async function inviteCommand(args: { profileDir: string; room: string; user: string }): Promise<void> {
  await withClient(args.profileDir, async (client) => {
    await client.invite(await resolveRoom(client, args.room), args.user);
  });
}

export async function leaveCommand(args: { profileDir: string; room: string }): Promise<void> {
  await withClient(args.profileDir, async (client) => {
    await client.leaveRoom(await resolveRoom(client, args.room));
  });
}
