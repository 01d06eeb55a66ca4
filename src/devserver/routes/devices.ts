// Device management. Deleting devices needs user-interactive auth by password.
import * as z from "../../wire/zod.ts";
import { MatrixError, notFound } from "../errors.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody } from "../router.ts";
import type { DeviceRow } from "../storage/index.ts";
import { uiaAuthField } from "../uia.ts";

/** Most devices one delete_devices request may name. */
export const MAX_DELETE_DEVICES = 1000;

const deviceJson = (d: DeviceRow) => ({
  device_id: d.device_id,
  display_name: d.display_name ?? undefined,
  last_seen_ts: d.last_seen_ts ?? undefined,
  last_seen_ip: d.last_seen_ip ?? undefined,
});

export function registerDeviceRoutes({ hs, router, uia }: RouteContext): void {
  router.client("GET", "/devices", (req) => {
    const a = authed(req);
    return { json: { devices: hs.accounts.listDevices(a.userId).map(deviceJson) } };
  });
  router.client("GET", "/devices/:device", (req) => {
    const a = authed(req);
    const d = hs.accounts.getDevice(a.userId, req.params.device!);
    if (!d) throw notFound("Device not found");
    return { json: deviceJson(d) };
  });
  router.client("PUT", "/devices/:device", (req) => {
    const a = authed(req);
    const body = jsonBody(req, z.object({ display_name: z.optional(z.string().check(z.maxLength(255))) }));
    const deviceId = req.params.device!;
    if (!hs.accounts.getDevice(a.userId, deviceId)) {
      // MSC4190: an appservice creates its users' devices this way (no login, no stray token).
      if (a.appserviceId === undefined) throw notFound("Device not found");
      if (deviceId.length > 255) throw new MatrixError(400, "M_INVALID_PARAM", "Device ID too long");
      hs.checkRoomForDevice(a.userId);
      hs.accounts.upsertDevice(a.userId, deviceId, body.display_name ?? null, req.ip);
      hs.deviceListChanged(a.userId);
      return { status: 201, json: {} };
    }
    if (body.display_name !== undefined) {
      hs.accounts.setDeviceName(a.userId, req.params.device!, body.display_name);
      // The display name is part of what keys/query reports, so other users must refresh.
      hs.deviceListChanged(a.userId);
    }
    return { json: {} };
  });
  router.client("DELETE", "/devices/:device", (req) => {
    const a = authed(req);
    const body = jsonBody(req, z.object({ auth: uiaAuthField }));
    if (!hs.accounts.getDevice(a.userId, req.params.device!)) throw notFound("Device not found");
    // MSC4190: an appservice manages its users' devices without UIA (they have no password).
    if (a.appserviceId === undefined)
      uia.require(
        body.auth,
        `delete_device:${a.userId}:${req.params.device}`,
        [["m.login.password"]],
        a.userId,
      );
    hs.deleteDevice(a.userId, req.params.device!);
    return { json: {} };
  });
  router.client("POST", "/delete_devices", (req) => {
    const a = authed(req);
    const body = jsonBody(
      req,
      z.object({ devices: z.array(z.string()).check(z.maxLength(MAX_DELETE_DEVICES)), auth: uiaAuthField }),
    );
    if (a.appserviceId === undefined)
      uia.require(
        body.auth,
        `delete_devices:${a.userId}:${[...body.devices].sort().join(",")}`,
        [["m.login.password"]],
        a.userId,
      );
    for (const id of body.devices) if (hs.accounts.getDevice(a.userId, id)) hs.deleteDevice(a.userId, id);
    return { json: {} };
  });
}
