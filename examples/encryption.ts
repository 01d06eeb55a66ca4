// Enable encryption: two clients chat in an encrypted room. Keys are uploaded, fetched, claimed and
// shared behind `sendText`; the server only ever sees `m.room.encrypted`.
import { MatrixClient } from "keyroom";
import { type ExampleEnv, isMain, nextMessage, runAlone, uniqueName } from "./support.ts";

export interface EncryptionResult {
  readonly bobRead: string;
  readonly aliceRead: string;
  /** What the server stored for Alice's message. */
  readonly onTheWire: string;
  /** How Bob's client rated the device that sent the message. */
  readonly trust: string | undefined;
}

export async function run({ homeserverUrl }: ExampleEnv): Promise<EncryptionResult> {
  // #region enable-encryption
  // One option turns it on. The crypto store (SQLite) goes to $XDG_DATA_HOME/keyroom/<user>.
  const alice = new MatrixClient({ homeserverUrl, encryption: true });
  const bob = new MatrixClient({ homeserverUrl, encryption: true });
  await alice.register({ username: uniqueName("alice"), password: "alice's password" });
  await bob.register({ username: uniqueName("bob"), password: "bob's password" });

  // Private rooms are created with `m.room.encryption` (Megolm) unless `encrypted: false`.
  const roomId = await alice.createRoom({ name: "Secret", invite: [bob.userId] });
  await bob.joinRoom(roomId);
  await alice.startSync();
  await bob.startSync();

  const toBob = nextMessage(bob, roomId);
  await alice.sendText(roomId, "Only Bob can read this");
  const atBob = await toBob;
  // `type` and `content` are the decrypted ones, `raw` the event as the server sent it, and
  // `encryption` how decryption went: { decrypted: true, senderDeviceId, trust: "unverified", ... }
  const trust = atBob.encryption?.decrypted ? atBob.encryption.trust : undefined;

  const toAlice = nextMessage(alice, roomId);
  await bob.sendText(roomId, "And only Alice this", { replyTo: atBob.eventId });
  const atAlice = await toAlice;

  await alice.close(); // stops the sync loop and closes the crypto store
  await bob.close();
  // #endregion enable-encryption
  return {
    bobRead: String(atBob.content.body),
    aliceRead: String(atAlice.content.body),
    onTheWire: atBob.raw.type,
    trust,
  };
}

if (isMain(import.meta.url)) await runAlone(run);
