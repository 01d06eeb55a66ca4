// Device and identity trust in the client's encryption driver: users' devices and cross-signing
// identities (their keys fetched first when outdated), the trust we mark them with, and our own
// cross-signing bootstrap. `ClientCrypto` runs each call under the store's lease and hands it on here.
import type { CrossSigningStatus, DeviceInfo, DeviceTrust, UserIdentityInfo } from "../../e2ee/index.ts";
import type { OlmMachine } from "../../e2ee/machine.ts";
import { isRecord, jsonObjectSchema } from "../../wire/index.ts";
import { type HttpClient, path } from "../http.ts";
import { type UiaAuth, withUia } from "../uia.ts";
import { sendOutgoingRequest } from "./dispatch.ts";
import { ClientCryptoError } from "./errors.ts";
import type { OutgoingRequestLoop } from "./outgoing.ts";

export interface DeviceTrustHost {
  readonly machine: OlmMachine;
  readonly http: HttpClient;
  /** The engine's outgoing requests (key queries, signature uploads). */
  readonly loop: OutgoingRequestLoop;
}

export class DeviceTrustCalls {
  readonly #machine: OlmMachine;
  readonly #http: HttpClient;
  readonly #loop: OutgoingRequestLoop;

  constructor(host: DeviceTrustHost) {
    this.#machine = host.machine;
    this.#http = host.http;
    this.#loop = host.loop;
  }

  get #userId(): string {
    return this.#machine.userId;
  }

  /**
   * The user's devices without deleted ones: asked for first when outdated, or every time for a
   * user we do not track (a one-off query, which does not start tracking them).
   */
  async getUserDevices(userId: string): Promise<DeviceInfo[]> {
    await this.refreshDevices([userId]);
    return (await this.#machine.getUserDevices(userId)).filter((d) => !d.deleted);
  }

  /** Sets a device's local trust (see `ClientCrypto.setDeviceTrust`). */
  async setDeviceTrust(userId: string, deviceId: string, trust: DeviceTrust): Promise<DeviceInfo> {
    const machine = this.#machine;
    if ((await machine.getDevice(userId, deviceId)) === undefined) {
      // A device we have not seen (e.g. just logged in): ask the server again rather than refuse.
      await machine.receiveKeysChanges([userId], []);
      await this.refreshDevices([userId]);
    }
    const info =
      trust === "verified"
        ? (await machine.markDeviceVerified(userId, deviceId)).device
        : await machine.setDeviceTrust(userId, deviceId, trust);
    // Verifying one of our devices answers its held key requests (and uploads its signature): send them now.
    if (userId === this.#userId) await this.#loop.run();
    return info;
  }

  /**
   * Creates our cross-signing identity when needed (see `ClientCrypto.bootstrapCrossSigning`),
   * uploads it answering User-Interactive Auth with `auth`, and sends what the engine queued.
   */
  async bootstrapCrossSigning(opts: { auth?: UiaAuth; reset?: boolean }): Promise<void> {
    await this.refreshOwnKeys();
    const request = await this.#machine.bootstrapCrossSigning({ reset: opts.reset === true });
    if (request !== undefined) {
      await withUia(this.#userId, opts.auth, "upload cross-signing keys", (auth) =>
        this.#http.request({
          method: "POST",
          path: path`/_matrix/client/v3/keys/device_signing/upload`,
          body: { ...request.body, ...(auth !== undefined ? { auth } : {}) },
          schema: jsonObjectSchema,
        }),
      );
      await this.#machine.markRequestAsSent(request, {});
    }
    await this.#loop.run();
  }

  /** Our cross-signing state (our published keys asked for again when outdated). */
  async crossSigningStatus(): Promise<CrossSigningStatus> {
    await this.refreshDevices([this.#userId]);
    return this.#machine.crossSigningStatus();
  }

  /** A user's cross-signing identity (their keys fetched first if needed), or undefined. */
  async getUserIdentity(userId: string): Promise<UserIdentityInfo | undefined> {
    await this.refreshDevices([userId]);
    return this.#machine.getUserIdentity(userId);
  }

  /** Verifies a user's current identity (see `ClientCrypto.verifyUser`). */
  async verifyUser(userId: string, opts: { masterKey?: string }): Promise<UserIdentityInfo> {
    await this.refreshDevices([userId]);
    const { identity } = await this.#machine.markUserVerified(userId, opts);
    await this.#loop.run();
    return identity;
  }

  /** Our own devices, asking the server again when it named one the engine has not seen. */
  async getOwnDevices(serverDeviceIds: readonly string[]): Promise<DeviceInfo[]> {
    const machine = this.#machine;
    const known = async () => (await machine.getUserDevices(this.#userId)).filter((d) => !d.deleted);
    let devices = await known();
    const missing = serverDeviceIds.some(
      (id) => id !== machine.deviceId && !devices.some((d) => d.deviceId === id),
    );
    if (missing) {
      await machine.receiveKeysChanges([this.#userId], []);
      await this.refreshDevices([this.#userId]);
      devices = await known();
    }
    return devices;
  }

  /** Our own keys asked for again, whatever the cache says (another device may have changed them). */
  refreshOwnKeys(): Promise<void> {
    return this.refreshKeys([this.#userId]);
  }

  /** These users' keys asked for again, whatever the cache says. */
  async refreshKeys(userIds: readonly string[]): Promise<void> {
    await this.#machine.receiveKeysChanges(userIds, []);
    await this.refreshDevices(userIds);
  }

  /**
   * Makes sure these users' device lists are known and current: tracked users' with a
   * `/keys/query` when outdated, the others' with a one-off query each time (they are not
   * tracked for it: see `OlmMachine.queryKeysForUsers`).
   */
  async refreshDevices(userIds: readonly string[]): Promise<void> {
    const machine = this.#machine;
    const untracked = userIds.filter((u) => !machine.isTracked(u));
    if (untracked.length > 0) await this.#lookUp(untracked);
    const tracked = userIds.filter((u) => machine.isTracked(u));
    if (!machine.hasOutdatedUsers(tracked)) return;
    // Two runs: the first may have started before these users were marked.
    for (let i = 0; i < 2 && machine.hasOutdatedUsers(tracked); i++) await this.#loop.run();
    if (machine.hasOutdatedUsers(tracked)) {
      throw new ClientCryptoError(
        "DEVICE_LIST_UNAVAILABLE",
        "the devices of the room's members could not be fetched",
        { cause: this.#loop.lastError },
      );
    }
  }

  /** A one-off `/keys/query` for users we do not track; throws when the server did not answer for one. */
  async #lookUp(userIds: readonly string[]): Promise<void> {
    for (const request of await this.#machine.queryKeysForUsers(userIds)) {
      let response: unknown;
      try {
        response = await sendOutgoingRequest(this.#http, request);
      } catch (e) {
        throw new ClientCryptoError("DEVICE_LIST_UNAVAILABLE", "the user's devices could not be fetched", {
          cause: e,
        });
      }
      await this.#machine.markRequestAsSent(request, response);
      const answered = isRecord(response) ? response.device_keys : undefined;
      for (const userId of Object.keys(request.body.device_keys)) {
        // The server could not reach their homeserver: what we hold of them may be stale.
        if (!isRecord(answered) || answered[userId] === undefined) {
          throw new ClientCryptoError("DEVICE_LIST_UNAVAILABLE", "the user's devices could not be fetched");
        }
      }
    }
  }
}
