// Devices of one user added after the first set up cross-signing: for tests of a device verified
// through our cross-signing (it signs itself with our keys, as recovery lets it, or another does).
import type { OlmMachine } from "../machine.ts";
import { type FakeHomeserver, TestClient } from "./fake-homeserver.ts";

export type CrossSigningKeys = Awaited<ReturnType<OlmMachine["exportCrossSigningKeys"]>>;

/** `device` imports our cross-signing keys (`keys`) and signs itself with the self-signing key. */
export async function signsItself(device: TestClient, keys: CrossSigningKeys): Promise<void> {
  await device.machine.importCrossSigningKeys(keys);
  await device.machine.receiveKeysChanges([device.userId], []);
  await device.flush();
}

/** A new device of `userId` that learns our devices, then imports `keys` and signs itself. */
export async function selfSignedDevice(
  hs: FakeHomeserver,
  userId: string,
  deviceId: string,
  keys: CrossSigningKeys,
): Promise<TestClient> {
  const device = await TestClient.create(hs, { userId, deviceId });
  await device.machine.receiveKeysChanges([userId], []);
  await device.flush();
  await signsItself(device, keys);
  return device;
}

/** Each of `clients` fetches `userId`'s devices again (a /keys/query) and sends what follows. */
export async function refetchDevices(clients: TestClient[], userId: string): Promise<void> {
  for (const c of clients) {
    await c.machine.receiveKeysChanges([userId], []);
    await c.flush();
  }
}
