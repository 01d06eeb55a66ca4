// A small in-process homeserver for the E2EE benchmark: the key endpoints (upload, query, claim) and
// to-device routing, nothing else. Both machines under test talk to the same instance; its own cost
// is never inside a timed section.
import type { DeviceKeysJson, SignedKeyJson } from "../../src/e2ee/requests.ts";
import type { FakeDevice, ToDeviceEventJson } from "./fake-devices.ts";

interface ServerDevice {
  keys: DeviceKeysJson | undefined;
  oneTimeKeys: Map<string, SignedKeyJson>;
  fallback: { keyId: string; key: SignedKeyJson } | undefined;
  inbox: ToDeviceEventJson[];
}

/** A request in the server's terms; both drivers translate theirs into this. */
export type BenchRequest =
  | { type: "keys_upload"; body: KeysUploadBody }
  | { type: "keys_query"; body: { device_keys: Record<string, string[]> } }
  | { type: "keys_claim"; body: { one_time_keys: Record<string, Record<string, string>> } }
  | { type: "to_device"; eventType: string; body: { messages: Record<string, Record<string, unknown>> } };

interface KeysUploadBody {
  device_keys?: DeviceKeysJson;
  one_time_keys?: Record<string, SignedKeyJson>;
  fallback_keys?: Record<string, SignedKeyJson>;
}

export class BenchHomeserver {
  readonly #devices = new Map<string, Map<string, ServerDevice>>();
  /** To-device messages delivered (counted to check that a share reached every device). */
  delivered = 0;

  #device(userId: string, deviceId: string): ServerDevice {
    let byUser = this.#devices.get(userId);
    if (byUser === undefined) {
      byUser = new Map();
      this.#devices.set(userId, byUser);
    }
    let d = byUser.get(deviceId);
    if (d === undefined) {
      d = { keys: undefined, oneTimeKeys: new Map(), fallback: undefined, inbox: [] };
      byUser.set(deviceId, d);
    }
    return d;
  }

  /** Publishes a fake device's keys with `oneTimeKeys` signed one-time keys. */
  addFakeDevice(device: FakeDevice, oneTimeKeys: number): void {
    this.handle(device.userId, device.deviceId, {
      type: "keys_upload",
      body: { device_keys: device.deviceKeys(), one_time_keys: device.oneTimeKeys(oneTimeKeys) },
    });
  }

  /** One one-time key of a device (its fallback key once they run out), as a claim hands it out. */
  claimOne(userId: string, deviceId: string): string {
    const d = this.#device(userId, deviceId);
    const first = d.oneTimeKeys.entries().next().value;
    if (first !== undefined) {
      d.oneTimeKeys.delete(first[0]);
      return first[1].key;
    }
    if (d.fallback === undefined) throw new Error(`${userId} ${deviceId} has no key left to claim`);
    return d.fallback.key.key;
  }

  /** The published device keys of a device under test. */
  keysOf(userId: string, deviceId: string): DeviceKeysJson {
    const keys = this.#device(userId, deviceId).keys;
    if (keys === undefined) throw new Error(`${userId} ${deviceId} has not uploaded its keys`);
    return keys;
  }

  deliver(userId: string, deviceId: string, events: ToDeviceEventJson[]): void {
    this.#device(userId, deviceId).inbox.push(...events);
  }

  /** What one `/sync` carries for a device's E2EE: its to-device inbox (drained) and key counts. */
  syncFor(userId: string, deviceId: string) {
    const d = this.#device(userId, deviceId);
    return {
      toDevice: d.inbox.splice(0),
      oneTimeKeyCounts: { signed_curve25519: d.oneTimeKeys.size },
      unusedFallbackKeyTypes: d.fallback !== undefined ? ["signed_curve25519"] : [],
    };
  }

  handle(userId: string, deviceId: string, request: BenchRequest): Record<string, unknown> {
    switch (request.type) {
      case "keys_upload": {
        const d = this.#device(userId, deviceId);
        if (request.body.device_keys !== undefined) d.keys = request.body.device_keys;
        for (const [id, key] of Object.entries(request.body.one_time_keys ?? {})) d.oneTimeKeys.set(id, key);
        for (const [keyId, key] of Object.entries(request.body.fallback_keys ?? {}))
          d.fallback = { keyId, key };
        return { one_time_key_counts: { signed_curve25519: d.oneTimeKeys.size } };
      }
      case "keys_query": {
        const out: Record<string, Record<string, DeviceKeysJson>> = {};
        for (const user of Object.keys(request.body.device_keys)) {
          const byUser: Record<string, DeviceKeysJson> = {};
          for (const [id, d] of this.#devices.get(user) ?? []) if (d.keys !== undefined) byUser[id] = d.keys;
          out[user] = byUser;
        }
        return { device_keys: out, failures: {} };
      }
      case "keys_claim": {
        const out: Record<string, Record<string, Record<string, SignedKeyJson>>> = {};
        for (const [user, byDevice] of Object.entries(request.body.one_time_keys)) {
          for (const id of Object.keys(byDevice)) {
            const d = this.#devices.get(user)?.get(id);
            if (d === undefined) continue;
            const byUser = out[user] ?? {};
            out[user] = byUser;
            const first = d.oneTimeKeys.entries().next().value;
            if (first !== undefined) {
              d.oneTimeKeys.delete(first[0]);
              byUser[id] = { [first[0]]: first[1] };
            } else if (d.fallback !== undefined) {
              byUser[id] = { [d.fallback.keyId]: d.fallback.key };
            }
          }
        }
        return { one_time_keys: out, failures: {} };
      }
      case "to_device": {
        for (const [user, byDevice] of Object.entries(request.body.messages)) {
          for (const [target, content] of Object.entries(byDevice)) {
            const d = this.#devices.get(user)?.get(target);
            if (d === undefined) continue;
            this.delivered++;
            // Fake devices never read their inbox: only the devices under test keep theirs.
            if (isTested(user)) {
              d.inbox.push({
                type: request.eventType,
                sender: userId,
                content: content as Record<string, unknown>,
              });
            }
          }
        }
        return {};
      }
    }
  }
}

/** The devices under test are the only users outside the fake members' namespace. */
function isTested(userId: string): boolean {
  return !userId.startsWith("@member");
}
