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
  const { encryptKeyExportAsync } = await import("../../crypto/key-export/key-export.ts");
  // The passphrase derivation (500 000 rounds by default) runs off this thread where it can.
  return encryptKeyExportAsync(keys, passphrase, opts.rounds !== undefined ? { rounds: opts.rounds } : {});
}

/**
 * An export file's entries, still unvalidated. The passphrase derivation (up to
 * `MAX_EXPORT_ROUNDS`, seconds of CPU) runs off this thread where it can: call it before taking
 * the store's lease, which a blocked thread could not renew.
 */
export async function openRoomKeyFile(file: string, passphrase: string): Promise<unknown[]> {
  const { decryptKeyExportAsync } = await import("../../crypto/key-export/key-export.ts");
  return decryptKeyExportAsync(file, passphrase);
}

/** Imports an opened export file's entries; the events that were waiting for them come back decrypted. */
export function importRoomKeyEntries(
  machine: OlmMachine,
  entries: readonly unknown[],
  opts: { onProgress?: ProgressCallback },
): Promise<{ imported: number; total: number; redecrypted: DecryptedRoomEvent[] }> {
  return machine.importRoomKeys(entries, opts.onProgress);
}
