// Export / import room keys: a new device (or another client: Element, matrix-js-sdk) reads old
// history from a passphrase-protected key file in the standard format.
import { join } from "node:path";
import { MatrixClient } from "keyroom";
import { type ExampleEnv, isMain, runAlone, uniqueName } from "./support.ts";

export interface ExportImportResult {
  readonly header: string;
  readonly exportProgress: readonly string[];
  readonly importProgress: readonly string[];
  readonly beforeImport: string;
  readonly imported: number;
  readonly total: number;
  readonly afterImport: string;
}

export async function run({ homeserverUrl, dir }: ExampleEnv): Promise<ExportImportResult> {
  const device = (name: string) =>
    new MatrixClient({ homeserverUrl, encryption: { store: { directory: join(dir, name) } } });
  const alice = device("alice");
  await alice.register({ username: uniqueName("alice"), password: "alice's password" });
  const bob = device("bob");
  await bob.register({ username: uniqueName("bob"), password: "bob's password" });
  const roomId = await alice.createRoom({ name: "Archive", invite: [bob.userId] });
  await bob.joinRoom(roomId);
  const eventId = await alice.sendText(roomId, "Remember this");
  await bob.syncOnce({ timeoutMs: 0 }); // Bob's device now holds the room key
  const bodyOf = async (client: MatrixClient) => {
    const { events } = await client.messages(roomId, { limit: 50 });
    const event = events.find((e) => e.eventId === eventId);
    return event?.encryption?.decrypted === false ? event.encryption.code : String(event?.content.body);
  };

  // #region export-import
  const passphrase = "correct horse battery staple";
  const exportProgress: string[] = [];
  const importProgress: string[] = [];
  const file = await bob.exportRoomKeys(passphrase, {
    onProgress: (sessions, total) => void exportProgress.push(`${sessions}/${total} sessions`),
  });
  // "-----BEGIN MEGOLM SESSION DATA-----\n..." : save it wherever you like; it is encrypted.

  const newDevice = device("bob-new-device");
  await newDevice.login({ user: bob.userId, password: "bob's password" });
  const beforeImport = await bodyOf(newDevice); // "UNKNOWN_SESSION": no key for the history
  const { imported, total } = await newDevice.importRoomKeys(file, passphrase, {
    onProgress: (keys, of) => void importProgress.push(`${keys}/${of} keys`),
  });
  const afterImport = await bodyOf(newDevice); // "Remember this"
  // #endregion export-import

  for (const client of [alice, bob, newDevice]) await client.close();
  return {
    header: file.split("\n")[0] ?? "",
    exportProgress,
    importProgress,
    beforeImport,
    imported,
    total,
    afterImport,
  };
}

if (isMain(import.meta.url)) await runAlone(run);
