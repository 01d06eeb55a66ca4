// A worker thread of the Node client's backup restore (backup-decryptor-node.ts): decrypts the
// `session_data` of the records it is sent with `PkDecryption.decryptString`, the same code (MAC
// check included) the restore runs on its own thread otherwise. Answers each message once, in order.
import { parentPort } from "node:worker_threads";
import type { KeyBackupData } from "../../crypto/backup/index.ts";
import { PkDecryption, PkError } from "../../crypto/pk/index.ts";

export interface BackupWorkerRequest {
  readonly id: number;
  readonly privateKey: Uint8Array;
  /**
   * Each record's `ephemeral`, `ciphertext` and `mac`, three strings a record in one flat list (a
   * list of strings crosses threads cheaper than one of objects); a field that was not a string
   * is "" (it then fails to decrypt, as it would have).
   */
  readonly fields: readonly string[];
}

export interface BackupWorkerAnswer {
  readonly id: number;
  /** Per record: the plaintext, or null where it does not decrypt under the key. */
  readonly plaintexts: (string | null)[];
}

parentPort?.on("message", (request: BackupWorkerRequest) => {
  const key = PkDecryption.fromPrivateKey(request.privateKey);
  request.privateKey.fill(0); // this thread's copy; the key object holds its own
  const { fields } = request;
  const plaintexts: (string | null)[] = [];
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const data: KeyBackupData["session_data"] = {
      ephemeral: fields[i] as string,
      ciphertext: fields[i + 1] as string,
      mac: fields[i + 2] as string,
    };
    try {
      plaintexts.push(key.decryptString(data));
    } catch (e) {
      if (!(e instanceof PkError)) throw e;
      plaintexts.push(null);
    }
  }
  const answer: BackupWorkerAnswer = { id: request.id, plaintexts };
  parentPort?.postMessage(answer);
});
