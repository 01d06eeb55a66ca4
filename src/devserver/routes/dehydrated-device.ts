// Dehydrated devices (MSC3814), under the unstable prefix the rust-sdk and matrix-js-sdk call: one
// per user, a real device (keys/query lists it, to-device messages queue for it) whose opaque
// `device_data` the server keeps, and whose queued messages a new login fetches page by page.
import * as z from "../../wire/zod.ts";
import { badJson, MatrixError, notFound } from "../errors.ts";
import { verifySignedObject } from "../event-format.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody, type RouteRequest } from "../router.ts";
import { keyJson, MAX_DEVICE_KEYS_BYTES, storeKeys } from "./keys.ts";

export const DEHYDRATED_DEVICE_PREFIX = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device";
/** To-device events returned per page of `…/dehydrated_device/{id}/events` (Synapse's page size). */
export const DEHYDRATED_EVENTS_PAGE = 100;
/** Largest `device_data` (the pickled account) accepted, serialised. */
export const MAX_DEVICE_DATA_BYTES = 64 * 1024;

const keyMap = z.record(z.string(), z.unknown());
const putBody = z.object({
  device_id: z.string().check(z.minLength(1), z.maxLength(255)),
  device_data: z.record(z.string(), z.unknown()),
  initial_device_display_name: z.optional(z.string().check(z.maxLength(255))),
  device_keys: z.looseObject({
    user_id: z.string(),
    device_id: z.string(),
    algorithms: z.array(z.string()),
    keys: z.record(z.string(), z.string()),
  }),
  one_time_keys: z.optional(keyMap),
  fallback_keys: z.optional(keyMap),
});
const eventsBody = z.object({ next_batch: z.optional(z.string().check(z.maxLength(64))) });

export function registerDehydratedDeviceRoutes({ hs, router }: RouteContext): void {
  router.add("PUT", DEHYDRATED_DEVICE_PREFIX, (req) => {
    const a = authed(req);
    const body = jsonBody(req, putBody);
    const deviceId = body.device_id;
    if (Buffer.byteLength(JSON.stringify(body.device_data)) > MAX_DEVICE_DATA_BYTES) {
      throw badJson("device_data is too large");
    }
    const dk = body.device_keys;
    if (dk.user_id !== a.userId || dk.device_id !== deviceId) {
      throw new MatrixError(400, "M_INVALID_PARAM", "device_keys must be for the caller and the device");
    }
    const edKey = dk.keys[`ed25519:${deviceId}`];
    if (!edKey || !verifySignedObject(dk, a.userId, `ed25519:${deviceId}`, edKey)) {
      throw new MatrixError(400, "M_INVALID_SIGNATURE", "Device keys are not signed by the device's key");
    }
    const old = hs.keys.getDehydratedDevice(a.userId);
    if (old?.deviceId !== deviceId && hs.accounts.getDevice(a.userId, deviceId) !== undefined) {
      throw new MatrixError(400, "M_INVALID_PARAM", "A device with this ID already exists");
    }
    const { unsigned: _u, ...clean } = dk;
    // Replacing the dehydrated device (or re-uploading it) adds none.
    if (old === undefined && hs.accounts.getDevice(a.userId, deviceId) === undefined) {
      hs.checkRoomForDevice(a.userId);
    }
    hs.tx(() => {
      // The previous dehydrated device goes, with its keys and queued messages (as Synapse does).
      if (old !== undefined) hs.deleteDevice(a.userId, old.deviceId);
      hs.accounts.upsertDevice(a.userId, deviceId, body.initial_device_display_name ?? null, null);
      hs.accounts.setDeviceKeys(a.userId, deviceId, keyJson(clean, MAX_DEVICE_KEYS_BYTES, "device_keys"));
      storeKeys(hs, a.userId, deviceId, body.one_time_keys ?? {}, body.fallback_keys ?? {});
      hs.keys.putDehydratedDevice(a.userId, deviceId, JSON.stringify(body.device_data));
    });
    hs.deviceListChanged(a.userId);
    return { json: { device_id: deviceId } };
  });

  router.add("GET", DEHYDRATED_DEVICE_PREFIX, (req) => {
    const a = authed(req);
    const d = hs.keys.getDehydratedDevice(a.userId);
    if (d === undefined) throw notFound("No dehydrated device available");
    return { json: { device_id: d.deviceId, device_data: JSON.parse(d.deviceData) as unknown } };
  });

  router.add("DELETE", DEHYDRATED_DEVICE_PREFIX, (req) => {
    const a = authed(req);
    const d = hs.keys.getDehydratedDevice(a.userId);
    if (d === undefined) throw notFound("No dehydrated device available");
    hs.deleteDevice(a.userId, d.deviceId);
    return { json: { device_id: d.deviceId } };
  });

  /**
   * The device's queued to-device events from `after`, a page at a time. Reading does not consume
   * (MSC3814): an interrupted rehydration can start over, from this device or another; the queue
   * goes when the device is replaced or deleted.
   */
  const page = (req: RouteRequest, from: string | undefined) => {
    const a = authed(req);
    const d = hs.keys.getDehydratedDevice(a.userId);
    if (d === undefined || d.deviceId !== req.params.device) {
      throw new MatrixError(403, "M_FORBIDDEN", "No such dehydrated device");
    }
    if (from !== undefined && !/^\d{1,15}$/.test(from)) throw badJson("Invalid pagination token");
    const after = from === undefined ? 0 : Number(from);
    // One more than a page: whether anything remains after it.
    const rows = hs.keys.pendingToDevice(a.userId, d.deviceId, after, DEHYDRATED_EVENTS_PAGE + 1);
    const events = rows.slice(0, DEHYDRATED_EVENTS_PAGE);
    return {
      events: events.map((p) => JSON.parse(p.json) as unknown),
      last: String(events[events.length - 1]?.pos ?? after),
      more: rows.length > DEHYDRATED_EVENTS_PAGE,
    };
  };

  // The current draft (matrix-js-sdk 43, Synapse): `?from=`, and `next_batch` only while more remain.
  router.add("GET", `${DEHYDRATED_DEVICE_PREFIX}/:device/events`, (req) => {
    const p = page(req, req.query.get("from") ?? undefined);
    return { json: { events: p.events, ...(p.more ? { next_batch: p.last } : {}) } };
  });

  // The earlier draft (the rust-sdk's ruma): `{ next_batch }` in a POST body, always a `next_batch`
  // back; the client stops at an empty page.
  router.add("POST", `${DEHYDRATED_DEVICE_PREFIX}/:device/events`, (req) => {
    const p = page(req, jsonBody(req, eventsBody).next_batch);
    return { json: { events: p.events, next_batch: p.last } };
  });
}
