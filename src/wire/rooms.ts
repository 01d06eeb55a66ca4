// Room endpoints: create, join, send, state, messages, members, upgrade.

import { clientEventSchema, stateEventSchema } from "./events.ts";
import { jsonObjectSchema, lenientArray } from "./json.ts";
import * as z from "./zod.ts";

/** `POST /_matrix/client/v3/createRoom`. */
export interface CreateRoomRequest {
  visibility?: "public" | "private";
  room_alias_name?: string;
  name?: string;
  topic?: string;
  invite?: string[];
  room_version?: string;
  creation_content?: Record<string, unknown>;
  initial_state?: { type: string; state_key?: string; content: Record<string, unknown> }[];
  preset?: "private_chat" | "public_chat" | "trusted_private_chat";
  is_direct?: boolean;
  power_level_content_override?: Record<string, unknown>;
}

export const roomIdResponseSchema = z.looseObject({ room_id: z.string().check(z.minLength(1)) });
export type RoomIdResponse = z.infer<typeof roomIdResponseSchema>;

/** `PUT .../send/...`, `PUT .../state/...`, `PUT .../redact/...`. */
export const eventIdResponseSchema = z.looseObject({ event_id: z.string().check(z.minLength(1)) });
export type EventIdResponse = z.infer<typeof eventIdResponseSchema>;

/** `GET /_matrix/client/v3/rooms/{roomId}/messages`. */
export const messagesResponseSchema = z.looseObject({
  start: z.string(),
  end: z.optional(z.string()),
  chunk: lenientArray(clientEventSchema),
  state: z.optional(lenientArray(stateEventSchema)),
});
export type MessagesResponse = z.output<typeof messagesResponseSchema>;

/** `GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]`. */
export const relationsResponseSchema = z.looseObject({
  chunk: lenientArray(clientEventSchema),
  next_batch: z.optional(z.string()),
  prev_batch: z.optional(z.string()),
});

/** `GET /_matrix/client/v3/rooms/{roomId}/state`. */
export const roomStateResponseSchema = lenientArray(stateEventSchema);

/** `GET /_matrix/client/v3/rooms/{roomId}/state/{type}/{key}`: the content alone. */
export const stateContentResponseSchema = jsonObjectSchema;

/** `GET /_matrix/client/v3/rooms/{roomId}/members`. */
export const membersResponseSchema = z.looseObject({ chunk: lenientArray(stateEventSchema) });

/** `GET /_matrix/client/v3/joined_rooms`. */
export const joinedRoomsResponseSchema = z.looseObject({ joined_rooms: z.array(z.string()) });

/** `POST /_matrix/client/v3/rooms/{roomId}/upgrade`. */
export const upgradeRoomResponseSchema = z.looseObject({
  replacement_room: z.string().check(z.minLength(1)),
});

/** `GET /_matrix/client/v3/directory/room/{roomAlias}`. */
export const roomAliasResponseSchema = z.looseObject({
  room_id: z.string().check(z.minLength(1)),
  servers: z.optional(z.array(z.string())),
});
export type RoomAliasResponse = z.infer<typeof roomAliasResponseSchema>;

/** `GET /_matrix/client/v3/profile/{userId}`. */
export const profileResponseSchema = z.looseObject({
  displayname: z.optional(z.nullable(z.string())),
  avatar_url: z.optional(z.nullable(z.string())),
});
export type ProfileResponse = z.infer<typeof profileResponseSchema>;
