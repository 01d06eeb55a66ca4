// Recovery: one recovery key brings a new device back (cross-signed, history readable from the
// key backup) with no other device online.
import { join } from "node:path";
import { MatrixClient } from "keyroom";
import { type ExampleEnv, isMain, runAlone, uniqueName } from "./support.ts";

export interface RecoveryResult {
  readonly statusBefore: string;
  readonly beforeRecovery: string;
  readonly crossSigned: boolean;
  readonly restored: number;
  readonly afterRecovery: string;
  readonly statusAfter: string;
}

export async function run({ homeserverUrl, dir }: ExampleEnv): Promise<RecoveryResult> {
  const device = (name: string) =>
    new MatrixClient({ homeserverUrl, encryption: { store: { directory: join(dir, name) } } });
  const password = "alice's password";
  const laptop = device("laptop");
  await laptop.register({ username: uniqueName("alice"), password });
  const roomId = await laptop.createRoom({ name: "Diary", encrypted: true });
  const eventId = await laptop.sendText(roomId, "Dear diary");
  const bodyOf = async (client: MatrixClient) => {
    const { events } = await client.messages(roomId, { limit: 50 });
    const event = events.find((e) => e.eventId === eventId);
    return event?.encryption?.decrypted === false ? event.encryption.code : String(event?.content.body);
  };
  const statusBefore = (await laptop.crypto.recovery.status()).state; // "disabled"

  // #region recovery
  // Once, on a device the user has: cross-signing, a key backup and secret storage, one key.
  const { recoveryKey } = await laptop.crypto.recovery.enable({ auth: { password } });
  // Show `recoveryKey` ("EsT… …", 12 groups of four) to the user once; Keyroom never stores it.
  await laptop.crypto.backup.uploadPending(); // room keys go up after each sync; now, for the example
  await laptop.close(); // the laptop is gone: no other device is online

  const phone = device("phone");
  await phone.login({ user: laptop.userId, password });
  const beforeRecovery = await bodyOf(phone); // "UNKNOWN_SESSION"
  const { crossSigned, restored } = await phone.crypto.recovery.recover({ recoveryKey });
  const afterRecovery = await bodyOf(phone); // "Dear diary"
  const statusAfter = (await phone.crypto.recovery.status()).state; // "enabled"
  // #endregion recovery

  await phone.close();
  return { statusBefore, beforeRecovery, crossSigned, restored, afterRecovery, statusAfter };
}

if (isMain(import.meta.url)) await runAlone(run);
