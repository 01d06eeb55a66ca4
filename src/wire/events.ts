// Event formats of the Client-Server API: client events (timeline/state), stripped state (invites),
// basic events (account data, ephemeral) and to-device events.
import { z } from "zod";
import { jsonObjectSchema } from "./json.ts";

export const unsignedSchema = z.looseObject({
  age: z.number().optional(),
  transaction_id: z.string().optional(),
  prev_content: jsonObjectSchema.optional(),
  redacted_because: jsonObjectSchema.optional(),
  membership: z.string().optional(),
});
export type Unsigned = z.infer<typeof unsignedSchema>;

/** A room event as the server sends it to clients (`ClientEventWithoutRoomID` plus optional `room_id`). */
export const clientEventSchema = z.looseObject({
  event_id: z.string().min(1),
  type: z.string().min(1),
  sender: z.string().min(1),
  origin_server_ts: z.number(),
  content: jsonObjectSchema,
  state_key: z.string().optional(),
  room_id: z.string().optional(),
  redacts: z.string().optional(),
  unsigned: unsignedSchema.optional(),
});
export type ClientEvent = z.infer<typeof clientEventSchema>;

/** A client event that carries a `state_key`. */
export type StateEvent = ClientEvent & { state_key: string };

export const stateEventSchema = clientEventSchema.extend({ state_key: z.string() });

/** Stripped state as found in `invite_state` / `knock_state`. */
export const strippedStateEventSchema = z.looseObject({
  type: z.string().min(1),
  state_key: z.string(),
  sender: z.string().min(1),
  content: jsonObjectSchema,
});
export type StrippedStateEvent = z.infer<typeof strippedStateEventSchema>;

/** Account data and ephemeral events (typing, receipts): only `type` and `content`. */
export const basicEventSchema = z.looseObject({
  type: z.string().min(1),
  content: jsonObjectSchema,
});
export type BasicEvent = z.infer<typeof basicEventSchema>;

export const toDeviceEventSchema = z.looseObject({
  type: z.string().min(1),
  sender: z.string().min(1),
  content: jsonObjectSchema,
});
export type ToDeviceEvent = z.infer<typeof toDeviceEventSchema>;

/** Membership values of `m.room.member`. */
export const membershipSchema = z.enum(["join", "invite", "leave", "ban", "knock"]);
export type Membership = z.infer<typeof membershipSchema>;
