// Device IDs: an encrypted client should come back as the same device after a restart, because the
// device ID is bound to its identity keys. Either let the crypto store remember it
// (`restoreDeviceId`), or choose it yourself at login.
import { join } from "node:path";
import { MatrixClient, StoreMismatchError } from "keyroom";
import { type ExampleEnv, isMain, runAlone, uniqueName } from "./support.ts";

export interface DeviceIdsResult {
  readonly restoredSameDevice: boolean;
  readonly restoredSameKeys: boolean;
  readonly firstDevice: string;
  /** Carol's other devices, as her laptop sees them: the restarts added none. */
  readonly otherDevices: readonly string[];
  readonly explicitDeviceId: string;
  readonly explicitSameKeys: boolean;
  /** What opening the laptop's store as another device gave. */
  readonly otherDeviceOnStore: string;
}

export async function run({ homeserverUrl, dir }: ExampleEnv): Promise<DeviceIdsResult> {
  const username = uniqueName("carol");
  const password = "carol's password";
  const first = new MatrixClient({ homeserverUrl });
  await first.register({ username, password });
  const userId = first.userId;
  await first.logout();

  // #region restore-device-id
  // The store remembers the device ID the server gave at the first login; later logins reuse it.
  // Pass the full user ID: the store is looked up by it.
  const options = { store: { directory: join(dir, "carol") }, restoreDeviceId: true };
  const before = new MatrixClient({ homeserverUrl, encryption: options });
  await before.login({ user: userId, password });
  const firstDevice = before.deviceId;
  const fingerprint = before.getFingerprint();
  await before.close();

  // A new process (no saved session, same store): same device, same keys.
  const after = new MatrixClient({ homeserverUrl, encryption: options });
  await after.login({ user: userId, password });
  const restoredSameDevice = after.deviceId === firstDevice;
  const restoredSameKeys = after.getFingerprint() === fingerprint;
  await after.close();
  // #endregion restore-device-id

  // #region explicit-device-id
  // Or keep track of the device ID yourself and give it at every login.
  const laptopStore = { store: { directory: join(dir, "carol-laptop") } };
  const laptop = new MatrixClient({ homeserverUrl, encryption: laptopStore });
  await laptop.login({ user: userId, password, deviceId: "CAROLLAPTOP" });
  const laptopKeys = laptop.getFingerprint();
  await laptop.close();

  const laptopAgain = new MatrixClient({ homeserverUrl, encryption: laptopStore });
  await laptopAgain.login({ user: userId, password, deviceId: "CAROLLAPTOP" });
  const explicitSameKeys = laptopAgain.getFingerprint() === laptopKeys;
  const otherDevices = (await laptopAgain.getUserDevices(userId)).map((d) => d.deviceId);
  await laptopAgain.close();

  // A store never hands one device's keys to another: a new device ID needs a new store location
  // (export the room keys first to keep reading history, see export-import.ts).
  let otherDeviceOnStore = "accepted";
  const other = new MatrixClient({ homeserverUrl, encryption: laptopStore });
  try {
    await other.login({ user: userId, password, deviceId: "CAROLPHONE" });
  } catch (e) {
    if (!(e instanceof StoreMismatchError)) throw e;
    otherDeviceOnStore = e.code; // "DEVICE_MISMATCH"
    // The server made the new device before the store refused it: log that device out again.
    if (other.isLoggedIn) await other.logout();
  } finally {
    await other.close();
  }
  // #endregion explicit-device-id

  return {
    restoredSameDevice,
    restoredSameKeys,
    firstDevice,
    otherDevices,
    explicitDeviceId: laptop.deviceId,
    explicitSameKeys,
    otherDeviceOnStore,
  };
}

if (isMain(import.meta.url)) await runAlone(run);
