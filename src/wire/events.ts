// Event formats of the Client-Server API: client events (timeline/state), stripped state (invites),
// basic events (account data, ephemeral) and to-device events.

import { jsonObjectSchema, MAX_EVENT_DEPTH, storableWithin } from "./json.ts";
import * as z from "./zod.ts";

export const unsignedSchema = z.looseObject({
  age: z.optional(z.number()),
  transaction_id: z.optional(z.string()),
  prev_content: z.optional(jsonObjectSchema),
  redacted_because: z.optional(jsonObjectSchema),
  membership: z.optional(z.string()),
});
export type Unsigned = z.infer<typeof unsignedSchema>;

/**
 * Every event schema's last check: nesting bounded (see `MAX_EVENT_DEPTH`), and no number past a
 * double's range (see `storableWithin`).
 */
export const boundedDepth = z.refine((e: unknown) => storableWithin(e, MAX_EVENT_DEPTH), {
  message: `nests deeper than ${MAX_EVENT_DEPTH} levels or holds a number past a double's range`,
});

const clientEventShape = {
  event_id: z.string().check(z.minLength(1)),
  type: z.string().check(z.minLength(1)),
  sender: z.string().check(z.minLength(1)),
  origin_server_ts: z.number(),
  content: jsonObjectSchema,
  state_key: z.optional(z.string()),
  room_id: z.optional(z.string()),
  redacts: z.optional(z.string()),
  unsigned: z.optional(unsignedSchema),
};

/** A room event as the server sends it to clients (`ClientEventWithoutRoomID` plus optional `room_id`). */
export const clientEventSchema = z.looseObject(clientEventShape).check(boundedDepth);
export type ClientEvent = z.infer<typeof clientEventSchema>;

/** A client event that carries a `state_key`. */
export type StateEvent = ClientEvent & { state_key: string };

export const stateEventSchema = z
  .looseObject({ ...clientEventShape, state_key: z.string() })
  .check(boundedDepth);

/** Stripped state as found in `invite_state` / `knock_state`. */
export const strippedStateEventSchema = z
  .looseObject({
    type: z.string().check(z.minLength(1)),
    state_key: z.string(),
    sender: z.string().check(z.minLength(1)),
    content: jsonObjectSchema,
  })
  .check(boundedDepth);
export type StrippedStateEvent = z.infer<typeof strippedStateEventSchema>;

/** Account data and ephemeral events (typing, receipts): only `type` and `content`. */
export const basicEventSchema = z
  .looseObject({ type: z.string().check(z.minLength(1)), content: jsonObjectSchema })
  .check(boundedDepth);
export type BasicEvent = z.infer<typeof basicEventSchema>;

export const toDeviceEventShape = {
  type: z.string().check(z.minLength(1)),
  sender: z.string().check(z.minLength(1)),
  content: jsonObjectSchema,
};
export const toDeviceEventSchema = z.looseObject(toDeviceEventShape).check(boundedDepth);
export type ToDeviceEvent = z.infer<typeof toDeviceEventSchema>;

/** Membership values of `m.room.member`. */
export const membershipSchema = z.enum(["join", "invite", "leave", "ban", "knock"]);
export type Membership = z.infer<typeof membershipSchema>;
