// Device verification: with `verifyDevices`, sending into a room where a device appeared that you
// never looked at throws `UnknownDevicesError`; mark each device verified, ignored or blacklisted,
// and send again. Blacklisted devices never get the room key.
import { join } from "node:path";
import { MatrixClient, type RoomEvent, UnknownDevicesError } from "keyroom";
import { type ExampleEnv, isMain, runAlone, uniqueName } from "./support.ts";

export interface VerificationResult {
  /** The devices the first send was refused for. */
  readonly unknown: readonly string[];
  /** What each of Bob's devices read of Alice's message: the text, or why it could not. */
  readonly laptop: string;
  readonly phone: string;
  readonly stranger: string;
  /** Alice's trust in the device that sent Bob's reply. */
  readonly replyTrust: string | undefined;
}

/** Text of a received message, or the decryption failure code. */
function readOf(events: readonly RoomEvent[], eventId: string): string {
  const event = events.find((e) => e.eventId === eventId);
  if (event === undefined) return "nothing received";
  if (event.encryption?.decrypted === false) return event.encryption.code;
  return String(event.content.body);
}

export async function run({ homeserverUrl, dir }: ExampleEnv): Promise<VerificationResult> {
  const bobName = uniqueName("bob");
  const password = "bob's password";
  const device = (name: string) =>
    new MatrixClient({ homeserverUrl, encryption: { store: { directory: join(dir, name) } } });
  const received = (client: MatrixClient) => {
    const events: RoomEvent[] = [];
    client.on("room.event", (_room, event) => void events.push(event));
    return events;
  };

  // #region verify-devices
  // Client-wide; or per room with `alice.setRoomVerifyDevices(roomId, true)`.
  const alice = new MatrixClient({
    homeserverUrl,
    encryption: { store: { directory: join(dir, "alice") }, verifyDevices: true },
  });
  await alice.register({ username: uniqueName("alice"), password: "alice's password" });

  // Bob has a laptop and a phone; someone who got his password logs in a third device.
  const laptop = device("bob-laptop");
  await laptop.register({ username: bobName, password });
  const phone = device("bob-phone");
  await phone.login({ user: laptop.userId, password });
  const stranger = device("bob-stranger");
  await stranger.login({ user: laptop.userId, password });
  const atLaptop = received(laptop);
  const atPhone = received(phone);
  const atStranger = received(stranger);
  const atAlice = received(alice);

  const roomId = await alice.createRoom({ name: "Verified", invite: [laptop.userId] });
  await laptop.joinRoom(roomId);

  // Bob reads his laptop's fingerprint to Alice (in person, on the phone...).
  const readOutByBob = new Map([[laptop.deviceId, laptop.getFingerprint()]]);

  let unknown: string[] = [];
  try {
    await alice.sendText(roomId, "Are you really Bob?");
  } catch (e) {
    if (!(e instanceof UnknownDevicesError)) throw e;
    unknown = e.devices.map((d) => d.deviceId);
    for (const d of e.devices) {
      if (readOutByBob.get(d.deviceId) === d.ed25519) {
        await alice.verifyDevice(d.userId, d.deviceId); // checked: sends and receives as verified
      } else if (d.deviceId === phone.deviceId) {
        await alice.ignoreDevice(d.userId, d.deviceId); // Bob vouches for it: keys, but unverified
      } else {
        await alice.blacklistDevice(d.userId, d.deviceId); // never gets a room key
      }
    }
  }
  const eventId = await alice.sendText(roomId, "Are you really Bob?");

  for (const client of [laptop, phone, stranger]) await client.syncOnce({ timeoutMs: 0 });
  const reply = await laptop.sendText(roomId, "It's me, on my laptop");
  await alice.syncOnce({ timeoutMs: 0 });
  const replyEvent = atAlice.find((e) => e.eventId === reply);
  // From a device Alice verified: { decrypted: true, senderDeviceId, trust: "verified", ... }
  const replyTrust = replyEvent?.encryption?.decrypted ? replyEvent.encryption.trust : undefined;
  // #endregion verify-devices

  for (const client of [alice, laptop, phone, stranger]) await client.close();
  return {
    unknown,
    laptop: readOf(atLaptop, eventId),
    phone: readOf(atPhone, eventId),
    stranger: readOf(atStranger, eventId),
    replyTrust,
  };
}

if (isMain(import.meta.url)) await runAlone(run);
