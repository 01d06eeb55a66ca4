// `GET /_matrix/client/v3/sync` response. Event arrays and room maps are lenient: malformed entries
// are dropped so one bad event cannot stall the sync loop; the envelope itself must be valid.
import { z } from "zod";
import {
  basicEventSchema,
  clientEventSchema,
  stateEventSchema,
  strippedStateEventSchema,
  toDeviceEventSchema,
} from "./events.ts";
import { lenientArray, lenientRecord } from "./json.ts";

const stateSchema = z.object({ events: lenientArray(stateEventSchema).optional() });
const basicEventsSchema = z.object({ events: lenientArray(basicEventSchema).optional() });

export const timelineSchema = z.object({
  events: lenientArray(clientEventSchema).optional(),
  limited: z.boolean().optional(),
  prev_batch: z.string().optional(),
});
export type Timeline = z.infer<typeof timelineSchema>;

export const roomSummarySchema = z.object({
  "m.heroes": z.array(z.string()).optional(),
  "m.joined_member_count": z.number().int().nonnegative().optional(),
  "m.invited_member_count": z.number().int().nonnegative().optional(),
});
export type RoomSummary = z.infer<typeof roomSummarySchema>;

export const joinedRoomSchema = z.object({
  summary: roomSummarySchema.optional(),
  state: stateSchema.optional(),
  timeline: timelineSchema.optional(),
  ephemeral: basicEventsSchema.optional(),
  account_data: basicEventsSchema.optional(),
  unread_notifications: z
    .object({
      highlight_count: z.number().int().nonnegative().optional(),
      notification_count: z.number().int().nonnegative().optional(),
    })
    .optional(),
});
export type JoinedRoomSync = z.infer<typeof joinedRoomSchema>;

export const invitedRoomSchema = z.object({
  invite_state: z.object({ events: lenientArray(strippedStateEventSchema).optional() }).optional(),
});
export type InvitedRoomSync = z.infer<typeof invitedRoomSchema>;

export const knockedRoomSchema = z.object({
  knock_state: z.object({ events: lenientArray(strippedStateEventSchema).optional() }).optional(),
});
export type KnockedRoomSync = z.infer<typeof knockedRoomSchema>;

export const leftRoomSchema = z.object({
  state: stateSchema.optional(),
  timeline: timelineSchema.optional(),
  account_data: basicEventsSchema.optional(),
});
export type LeftRoomSync = z.infer<typeof leftRoomSchema>;

export const deviceListsSchema = z.object({
  changed: z.array(z.string()).optional(),
  left: z.array(z.string()).optional(),
});
export type DeviceLists = z.infer<typeof deviceListsSchema>;

export const oneTimeKeyCountsSchema = z.record(z.string(), z.number().int().nonnegative());
export type OneTimeKeyCounts = z.infer<typeof oneTimeKeyCountsSchema>;

export const syncResponseSchema = z.object({
  next_batch: z.string().min(1),
  rooms: z
    .object({
      join: lenientRecord(joinedRoomSchema).optional(),
      invite: lenientRecord(invitedRoomSchema).optional(),
      leave: lenientRecord(leftRoomSchema).optional(),
      knock: lenientRecord(knockedRoomSchema).optional(),
    })
    .optional(),
  presence: basicEventsSchema.optional(),
  account_data: basicEventsSchema.optional(),
  to_device: z.object({ events: lenientArray(toDeviceEventSchema).optional() }).optional(),
  device_lists: deviceListsSchema.optional(),
  device_one_time_keys_count: oneTimeKeyCountsSchema.optional(),
  device_unused_fallback_key_types: z.array(z.string()).optional(),
});
/** The validated sync response (malformed events already dropped). */
export type SyncResponse = z.output<typeof syncResponseSchema>;
