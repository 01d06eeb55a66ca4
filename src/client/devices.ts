// The account's own devices (spec "Device management"): list, rename and delete them. Deleting
// needs User-Interactive Authentication; the caller answers it with a password or a callback.

import type { DeviceInfo } from "../e2ee/index.ts";
import * as z from "../wire/zod.ts";
import { ClientError, MatrixError } from "./errors.ts";
import { type HttpClient, path } from "./http.ts";
import { type UiaAuth, withUia } from "./uia.ts";

/** One device of the logged-in account, as the server lists it. */
export interface OwnDevice {
  readonly deviceId: string;
  readonly displayName: string | undefined;
  readonly lastSeenIp: string | undefined;
  /** Milliseconds since the epoch. */
  readonly lastSeenTs: number | undefined;
  /** This client's own device. */
  readonly current: boolean;
  /**
   * With encryption on: the device's keys and the trust this client gave it (undefined for this
   * device, and for a device whose keys were never published).
   */
  readonly e2ee: DeviceInfo | undefined;
}

/** How to answer the server's authentication challenge when deleting devices (see `UiaAuth`). */
export type DeviceDeletionAuth = UiaAuth;

export { MAX_UIA_ROUNDS } from "./uia.ts";

const deviceSchema = z.looseObject({
  device_id: z.string().check(z.minLength(1)),
  display_name: z.optional(z.nullable(z.string())),
  last_seen_ip: z.optional(z.nullable(z.string())),
  last_seen_ts: z.optional(z.nullable(z.number().check(z.int()))),
});
const devicesResponseSchema = z.looseObject({ devices: z.array(deviceSchema) });
const emptySchema = z.looseObject({});

export interface DeviceApiHost {
  readonly http: HttpClient;
  /** The logged-in account (throws when there is none). */
  session(): { userId: string; deviceId: string };
  /**
   * The account's devices as the crypto engine knows them (refreshed if the server listed one it
   * lacks); empty without encryption.
   */
  e2eeDevices(serverDeviceIds: readonly string[]): Promise<readonly DeviceInfo[]>;
}

export class DeviceApi {
  readonly #host: DeviceApiHost;

  constructor(host: DeviceApiHost) {
    this.#host = host;
  }

  #own(d: z.output<typeof deviceSchema>, e2ee: readonly DeviceInfo[]): OwnDevice {
    return {
      deviceId: d.device_id,
      displayName: d.display_name ?? undefined,
      lastSeenIp: d.last_seen_ip ?? undefined,
      lastSeenTs: d.last_seen_ts ?? undefined,
      current: d.device_id === this.#host.session().deviceId,
      e2ee: e2ee.find((i) => i.deviceId === d.device_id),
    };
  }

  /** Every device of the account. */
  async list(): Promise<OwnDevice[]> {
    const res = await this.#host.http.request({
      method: "GET",
      path: path`/_matrix/client/v3/devices`,
      schema: devicesResponseSchema,
    });
    const e2ee = await this.#host.e2eeDevices(res.devices.map((d) => d.device_id));
    return res.devices.map((d) => this.#own(d, e2ee));
  }

  /** One device, or undefined if the account has none with this ID. */
  async get(deviceId: string): Promise<OwnDevice | undefined> {
    try {
      const d = await this.#host.http.request({
        method: "GET",
        path: path`/_matrix/client/v3/devices/${deviceId}`,
        schema: deviceSchema,
      });
      return this.#own(d, await this.#host.e2eeDevices([d.device_id]));
    } catch (e) {
      if (e instanceof MatrixError && e.errcode === "M_NOT_FOUND") return undefined;
      throw e;
    }
  }

  /** Sets a device's display name (other users see it in its keys). */
  async rename(deviceId: string, displayName: string): Promise<void> {
    await this.#host.http.request({
      method: "PUT",
      path: path`/_matrix/client/v3/devices/${deviceId}`,
      body: { display_name: displayName },
      schema: emptySchema,
    });
  }

  /**
   * Deletes devices of the account (their access tokens stop working, their keys go). The device
   * this client runs on is refused (`CANNOT_DELETE_CURRENT_DEVICE`): log out instead.
   */
  async delete(deviceIds: readonly string[], auth: DeviceDeletionAuth): Promise<void> {
    const { userId, deviceId: current } = this.#host.session();
    if (deviceIds.includes(current)) {
      throw new ClientError(
        "CANNOT_DELETE_CURRENT_DEVICE",
        "this client's own device cannot be deleted here: call logout() instead",
      );
    }
    if (deviceIds.length === 0) return;
    const request = (authDict: Record<string, unknown> | undefined) =>
      this.#host.http.request({
        method: "POST",
        path: path`/_matrix/client/v3/delete_devices`,
        body: { devices: [...deviceIds], ...(authDict !== undefined ? { auth: authDict } : {}) },
        schema: emptySchema,
      });
    await withUia(userId, auth, "delete devices", request);
  }
}
