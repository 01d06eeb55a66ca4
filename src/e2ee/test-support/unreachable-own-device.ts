// Bob holds the backup key, and his own device B2 is verified but cannot be reached: it has no
// one-time or fallback key on the server, so no Olm session can be started with it. For tests of
// the answers to B2's secret requests that wait for a session.
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { emptyChanges } from "../machine-context.ts";
import { CLAIM_FAILURE_BACKOFF_MS } from "../machine-requests.ts";
import { BACKUP_SECRET } from "../secret-storage/names.ts";
import { FakeHomeserver, TestClient } from "./fake-homeserver.ts";

export const BOB = "@bob:x";

export interface UnreachableOwnDevice {
  readonly hs: FakeHomeserver;
  readonly bob: TestClient;
  /** Encrypted to-device messages sent to B2 so far. */
  sentToB2(): number;
  /** B2 publishes keys again, and Bob's clock passes the failed claim's back-off. */
  reachable(): Promise<void>;
}

export async function verifiedUnreachableOwnDevice(): Promise<UnreachableOwnDevice> {
  const hs = new FakeHomeserver();
  let now = 1_700_000_000_000;
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "B", now: () => now });
  await bob.store.saveChanges({
    ...emptyChanges(),
    secrets: { [BACKUP_SECRET]: encodeBase64(randomBytes(32)) },
  });
  await bob.restart();
  const b2 = await TestClient.create(hs, { userId: BOB, deviceId: "B2" });
  await bob.machine.updateTrackedUsers([BOB]);
  await bob.flush();
  await bob.machine.setDeviceTrust(BOB, "B2", "verified");
  hs.exhaustOneTimeKeys(BOB, "B2");
  hs.device(BOB, "B2").fallback = undefined;
  return {
    hs,
    bob,
    sentToB2: () =>
      hs.sentToDevice.filter((m) => m.to === `${BOB}|B2` && m.eventType === "m.room.encrypted").length,
    reachable: async () => {
      hs.device(BOB, "B2").changed.clear();
      await b2.sync();
      now += CLAIM_FAILURE_BACKOFF_MS;
    },
  };
}
