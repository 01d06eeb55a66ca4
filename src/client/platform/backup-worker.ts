// A worker thread of the Node client's backup restore (backup-decryptor-node.ts): decrypts the
// `session_data` of the records it is sent with `PkDecryption.decryptString`, the same code (MAC
// check included) the restore runs on its own thread otherwise. Answers each message once, in order.
import { parentPort } from "node:worker_threads";
import type { KeyBackupData } from "../../crypto/backup/index.ts";
import { PkDecryption, PkError } from "../../crypto/pk/index.ts";

export interface BackupWorkerRequest {
  readonly id: number;
  readonly privateKey: Uint8Array;
  readonly data: readonly KeyBackupData["session_data"][];
}

export interface BackupWorkerAnswer {
  readonly id: number;
  /** Per record: the plaintext, or null where it does not decrypt under the key. */
  readonly plaintexts: (string | null)[];
}

parentPort?.on("message", (request: BackupWorkerRequest) => {
  const key = PkDecryption.fromPrivateKey(request.privateKey);
  request.privateKey.fill(0); // this thread's copy; the key object holds its own
  const plaintexts = request.data.map((data) => {
    try {
      return key.decryptString(data);
    } catch (e) {
      if (e instanceof PkError) return null;
      throw e;
    }
  });
  const answer: BackupWorkerAnswer = { id: request.id, plaintexts };
  parentPort?.postMessage(answer);
});
