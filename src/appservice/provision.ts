// Setting a virtual user up on the homeserver: registering it (`m.login.application_service`) and
// creating its device (MSC4190, else an appservice login), all with the appservice's `as_token`.
import { randomBytes } from "../crypto/primitives/index.ts";
import { type HttpClient, MatrixError, path } from "../index.ts";
import { LOGIN_TYPE_APPSERVICE } from "../wire/appservice.ts";
import { emptyResponseSchema, loginResponseSchema, registerResponseSchema } from "../wire/index.ts";
import { AppserviceError } from "./errors.ts";

/** A device ID for a new virtual user device (upper-case letters, as Synapse makes them). */
export function newDeviceId(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  let out = "AS";
  for (const b of randomBytes(10)) out += alphabet[b % 26];
  return out;
}

/** Registers a namespace user; one that exists already is fine. */
export async function registerUser(http: HttpClient, userId: string): Promise<void> {
  const localpart = userId.slice(1, userId.indexOf(":"));
  try {
    await http.request({
      method: "POST",
      path: path`/_matrix/client/v3/register`,
      body: { type: LOGIN_TYPE_APPSERVICE, username: localpart, inhibit_login: true },
      schema: registerResponseSchema,
    });
  } catch (e) {
    if (!(e instanceof MatrixError && e.errcode === "M_USER_IN_USE")) throw e;
  }
}

/**
 * Creates the device if it does not exist: MSC4190's `PUT /devices/{deviceId}` (no access token
 * left behind), or on servers without it an `m.login.application_service` login with that device
 * (whose token is not used: requests go with the `as_token`).
 */
export async function ensureDevice(
  http: HttpClient,
  userId: string,
  deviceId: string,
  displayName: string | undefined,
): Promise<void> {
  try {
    await http.request({
      method: "PUT",
      path: path`/_matrix/client/v3/devices/${deviceId}`,
      query: { user_id: userId },
      body: displayName !== undefined ? { display_name: displayName } : {},
      schema: emptyResponseSchema,
    });
    return;
  } catch (e) {
    if (!(e instanceof MatrixError && e.httpStatus === 404)) {
      throw new AppserviceError("DEVICE_SETUP_FAILED", `could not create the device of ${userId}`, {
        cause: e,
      });
    }
  }
  try {
    await http.request({
      method: "POST",
      path: path`/_matrix/client/v3/login`,
      body: {
        type: LOGIN_TYPE_APPSERVICE,
        identifier: { type: "m.id.user", user: userId },
        device_id: deviceId,
        ...(displayName !== undefined ? { initial_device_display_name: displayName } : {}),
      },
      schema: loginResponseSchema,
    });
  } catch (e) {
    throw new AppserviceError("DEVICE_SETUP_FAILED", `could not create the device of ${userId}`, {
      cause: e,
    });
  }
}
