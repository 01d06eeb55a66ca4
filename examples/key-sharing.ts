// Key sharing with your own devices: a new device cannot read what was sent before it existed; it
// asks your other devices for the keys (`m.room_key_request`), and they answer devices you
// verified. The event is then emitted again, decrypted, as `room.decrypted`.
import { join } from "node:path";
import { MatrixClient, type RoomEvent } from "keyroom";
import { type ExampleEnv, isMain, runAlone, uniqueName } from "./support.ts";

export interface KeySharingResult {
  /** How the new device first saw the old message. */
  readonly firstSeen: string;
  /** The same event once the key came from Bob's laptop. */
  readonly later: string;
  readonly laterTrust: string | undefined;
}

export async function run({ homeserverUrl, dir }: ExampleEnv): Promise<KeySharingResult> {
  const device = (name: string) =>
    new MatrixClient({ homeserverUrl, encryption: { store: { directory: join(dir, name) } } });
  const alice = device("alice");
  await alice.register({ username: uniqueName("alice"), password: "alice's password" });
  const laptop = device("bob-laptop");
  await laptop.register({ username: uniqueName("bob"), password: "bob's password" });
  const roomId = await alice.createRoom({ name: "History", invite: [laptop.userId] });
  await laptop.joinRoom(roomId);
  const eventId = await alice.sendText(roomId, "Sent before Bob's phone existed");
  await laptop.syncOnce({ timeoutMs: 0 }); // the laptop receives the room key

  // #region key-sharing
  const phone = device("bob-phone");
  await phone.login({ user: laptop.userId, password: "bob's password" });

  // Bob compares the fingerprints of his two devices and verifies each on the other, before the
  // phone syncs: devices answer key requests only from devices they verified, and accept
  // forwarded keys only from them.
  await laptop.syncOnce({ timeoutMs: 0 }); // the laptop learns about the phone
  await laptop.verifyDevice(laptop.userId, phone.deviceId);
  await phone.verifyDevice(laptop.userId, laptop.deviceId);

  let firstSeen: RoomEvent | undefined;
  let later: RoomEvent | undefined;
  phone.on("room.event", (_room, event) => {
    if (event.eventId === eventId) firstSeen = event; // encryption: { decrypted: false, code: "UNKNOWN_SESSION" }
  });
  phone.on("room.decrypted", (_room, event) => {
    if (event.eventId === eventId) later = event; // the same event, decrypted
  });

  // The phone's sync sends the key request; the laptop's sync answers it; the phone's next sync
  // receives the forwarded key. (With `startSync()` running on both, this happens by itself.)
  for (let round = 0; round < 5 && later === undefined; round++) {
    await phone.syncOnce({ timeoutMs: 0 });
    await laptop.syncOnce({ timeoutMs: 0 });
  }
  // #endregion key-sharing

  for (const client of [alice, laptop, phone]) await client.close();
  const decrypted = later?.encryption?.decrypted ? later.encryption : undefined;
  return {
    firstSeen: firstSeen?.encryption?.decrypted === false ? firstSeen.encryption.code : "decrypted",
    later: later === undefined ? "never decrypted" : String(later.content.body),
    laterTrust: decrypted?.trust,
  };
}

if (isMain(import.meta.url)) await runAlone(run);
