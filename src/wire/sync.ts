// `GET /_matrix/client/v3/sync` response. Event arrays and room maps are lenient: malformed entries
// are dropped so one bad event cannot stall the sync loop; the envelope itself must be valid.

import {
  basicEventSchema,
  clientEventSchema,
  stateEventSchema,
  strippedStateEventSchema,
  toDeviceEventSchema,
} from "./events.ts";
import { lenientArray, lenientOptional, lenientRecord } from "./json.ts";
import * as z from "./zod.ts";

const stateSchema = z.object({ events: z.optional(lenientArray(stateEventSchema)) });
const basicEventsSchema = z.object({ events: z.optional(lenientArray(basicEventSchema)) });

export const timelineSchema = z.object({
  events: z.optional(lenientArray(clientEventSchema)),
  limited: z.optional(z.boolean()),
  prev_batch: z.optional(z.string()),
});
export type Timeline = z.infer<typeof timelineSchema>;

export const roomSummarySchema = z.object({
  // Heroes that are no strings are dropped (the client keeps only user IDs, `MAX_ROOM_HEROES`).
  "m.heroes": z.optional(lenientArray(z.string())),
  "m.joined_member_count": z.optional(z.number().check(z.int(), z.nonnegative())),
  "m.invited_member_count": z.optional(z.number().check(z.int(), z.nonnegative())),
});
export type RoomSummary = z.infer<typeof roomSummarySchema>;

export const notificationCountsSchema = z.object({
  highlight_count: z.optional(z.number().check(z.int(), z.nonnegative())),
  notification_count: z.optional(z.number().check(z.int(), z.nonnegative())),
});
export type NotificationCountsSync = z.infer<typeof notificationCountsSchema>;

export const joinedRoomSchema = z.object({
  // A malformed summary is left out, not the room with it.
  summary: lenientOptional(roomSummarySchema),
  state: z.optional(stateSchema),
  timeline: z.optional(timelineSchema),
  ephemeral: z.optional(basicEventsSchema),
  account_data: z.optional(basicEventsSchema),
  // Malformed counts are left out, not the room with them.
  unread_notifications: lenientOptional(notificationCountsSchema),
  /** By thread root event ID (when the filter sets `unread_thread_notifications`); malformed ones dropped. */
  unread_thread_notifications: z.optional(lenientOptional(lenientRecord(notificationCountsSchema))),
});
export type JoinedRoomSync = z.infer<typeof joinedRoomSchema>;

export const invitedRoomSchema = z.object({
  invite_state: z.optional(z.object({ events: z.optional(lenientArray(strippedStateEventSchema)) })),
});
export type InvitedRoomSync = z.infer<typeof invitedRoomSchema>;

export const knockedRoomSchema = z.object({
  knock_state: z.optional(z.object({ events: z.optional(lenientArray(strippedStateEventSchema)) })),
});
export type KnockedRoomSync = z.infer<typeof knockedRoomSchema>;

export const leftRoomSchema = z.object({
  state: z.optional(stateSchema),
  timeline: z.optional(timelineSchema),
  account_data: z.optional(basicEventsSchema),
});
export type LeftRoomSync = z.infer<typeof leftRoomSchema>;

export const deviceListsSchema = z.object({
  changed: z.optional(z.array(z.string())),
  left: z.optional(z.array(z.string())),
});
export type DeviceLists = z.infer<typeof deviceListsSchema>;

export const oneTimeKeyCountsSchema = z.record(z.string(), z.number().check(z.int(), z.nonnegative()));
export type OneTimeKeyCounts = z.infer<typeof oneTimeKeyCountsSchema>;

export const syncResponseSchema = z.object({
  // Saved as it is, and sent back after a restart: a lone surrogate would come back as U+FFFD.
  next_batch: z.string().check(
    z.minLength(1),
    z.refine((s) => s.isWellFormed(), "not well-formed Unicode"),
  ),
  rooms: z.optional(
    z.object({
      join: z.optional(lenientRecord(joinedRoomSchema)),
      invite: z.optional(lenientRecord(invitedRoomSchema)),
      leave: z.optional(lenientRecord(leftRoomSchema)),
      knock: z.optional(lenientRecord(knockedRoomSchema)),
    }),
  ),
  presence: z.optional(basicEventsSchema),
  account_data: z.optional(basicEventsSchema),
  to_device: z.optional(z.object({ events: z.optional(lenientArray(toDeviceEventSchema)) })),
  device_lists: z.optional(deviceListsSchema),
  device_one_time_keys_count: z.optional(oneTimeKeyCountsSchema),
  device_unused_fallback_key_types: z.optional(z.array(z.string())),
});
/** The validated sync response (malformed events already dropped). */
export type SyncResponse = z.output<typeof syncResponseSchema>;
