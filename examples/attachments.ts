// Encrypted attachments: in an encrypted room `sendFile` encrypts the file before uploading it
// (AES-256-CTR, SHA-256, the key in the event's `file`), so the server stores only ciphertext.
import { join } from "node:path";
import { MatrixClient } from "keyroom";
import { type ExampleEnv, isMain, nextMessage, runAlone, uniqueName } from "./support.ts";

export interface AttachmentsResult {
  readonly msgtype: string;
  readonly filename: string;
  /** The bytes Bob got back equal the ones Alice sent. */
  readonly sameBytes: boolean;
  readonly streamedSameBytes: boolean;
  /** The file the server stores is not the plaintext. */
  readonly serverHasPlaintext: boolean;
}

export async function run({ homeserverUrl, dir }: ExampleEnv): Promise<AttachmentsResult> {
  const device = (name: string) =>
    new MatrixClient({ homeserverUrl, encryption: { store: { directory: join(dir, name) } } });
  const alice = device("alice");
  await alice.register({ username: uniqueName("alice"), password: "alice's password" });
  const bob = device("bob");
  await bob.register({ username: uniqueName("bob"), password: "bob's password" });
  const roomId = await alice.createRoom({ name: "Files", invite: [bob.userId] });
  await bob.joinRoom(roomId);
  await bob.startSync();
  const photo = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);

  // #region attachments
  const incoming = nextMessage(bob, roomId);
  // A Uint8Array, a Blob or a ReadableStream (give `size` for streams).
  await alice.sendFile(roomId, photo, { filename: "holiday.png", contentType: "image/png" });

  const event = await incoming;
  // { msgtype: "m.image", body: "holiday.png", info: {...}, file: { url, key, iv, hashes, v: "v2" } }
  const bytes = await bob.downloadAttachment(event.content); // hash checked, then decrypted

  // Big files: a stream; the hash can only be checked at the end, where a mismatch errors the
  // stream, so use the bytes once it ended cleanly.
  const chunks: Uint8Array[] = [];
  for await (const chunk of await bob.downloadAttachmentStream(event.content)) chunks.push(chunk);
  // #endregion attachments

  // What the server holds under the event's `file.url`.
  const file = event.content.file;
  const url = typeof file === "object" && file !== null && "url" in file ? file.url : undefined;
  if (typeof url !== "string") throw new Error("the event carries no encrypted file");
  const stored = (await bob.downloadMedia(url)).data;
  await alice.close();
  await bob.close();
  return {
    msgtype: String(event.content.msgtype),
    filename: String(event.content.body),
    sameBytes: Buffer.from(bytes).equals(photo),
    streamedSameBytes: Buffer.concat(chunks).equals(photo),
    serverHasPlaintext: Buffer.from(stored).equals(photo),
  };
}

if (isMain(import.meta.url)) await runAlone(run);
