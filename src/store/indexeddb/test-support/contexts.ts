// Contexts (tabs, workers) on one fake-indexeddb database, sharing Web Locks and BroadcastChannel
// stand-ins. Import "fake-indexeddb/auto" first in the test file.
import { IndexedDbCryptoStore } from "../idb-store.ts";
import { FakeChannels, FakeLocks } from "./fakes.ts";

export const ALICE = "@alice:example.org";
export const DEVICE = "ALICEDEVICE";

let n = 0;
/** A database name no other test of this process uses. */
export const newName = (): string => `idb-test-${process.pid}-${n++}`;

/** One new database and the Web Locks and BroadcastChannel stand-ins its contexts (tabs) share. */
export function contexts() {
  const locks = new FakeLocks();
  const channels = new FakeChannels();
  const name = newName();
  const open = () =>
    IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name, locks, broadcast: channels.factory });
  return { locks, channels, name, open };
}
