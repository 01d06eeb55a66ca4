// Room keys to and from a standard passphrase-protected key export file (Element and
// matrix-js-sdk read it). The file format itself (PBKDF2, AES-CTR, HMAC framing) is loaded on
// first use.
import type { ExportedRoomKey } from "../../crypto/key-export/index.ts";
import type { DecryptedRoomEvent, OlmMachine } from "../../e2ee/index.ts";
import type { ProgressCallback } from "./client-crypto-types.ts";

/**
 * The room keys of these rooms, or every room key we hold when `roomIds` is undefined, as an
 * export file. `onProgress` counts rooms, or sessions when exporting everything (read from the
 * store a page at a time).
 */
export async function exportRoomKeyFile(
  machine: OlmMachine,
  roomIds: readonly string[] | undefined,
  passphrase: string,
  opts: { onProgress?: ProgressCallback; rounds?: number },
): Promise<string> {
  const keys: ExportedRoomKey[] = [];
  if (roomIds === undefined) {
    const total = await machine.roomKeyCount();
    let read = 0;
    for await (const page of machine.exportAllRoomKeys()) {
      for (const key of page) keys.push(key);
      read += page.length;
      // Sessions that arrive during the export may push past the count taken at the start.
      opts.onProgress?.(read, Math.max(total, read));
    }
  } else {
    const rooms = [...new Set(roomIds)];
    for (let i = 0; i < rooms.length; i++) {
      for (const key of await machine.exportRoomKeys([rooms[i] as string])) keys.push(key);
      opts.onProgress?.(i + 1, rooms.length);
    }
  }
  const { encryptKeyExport } = await import("../../crypto/key-export/key-export.ts");
  return encryptKeyExport(keys, passphrase, opts.rounds !== undefined ? { rounds: opts.rounds } : {});
}

/** Imports an export file's keys; the events that were waiting for them come back decrypted. */
export async function importRoomKeyFile(
  machine: OlmMachine,
  file: string,
  passphrase: string,
  opts: { onProgress?: ProgressCallback },
): Promise<{ imported: number; total: number; redecrypted: DecryptedRoomEvent[] }> {
  const { decryptKeyExport } = await import("../../crypto/key-export/key-export.ts");
  const entries = decryptKeyExport(file, passphrase);
  return machine.importRoomKeys(entries, opts.onProgress);
}
