/**
 * Room keys moved in and out of the machine in bulk: imports in batches of `IMPORT_BATCH_SIZE`,
 * exports per room or a page of the store at a time, each batch or page its own step.
 */
import type { ExportedRoomKey } from "../../crypto/key-export/index.ts";
import type { RoomSessionKey } from "../../store/records.ts";
import type { PendingEvents } from "../decryption/pending.ts";
import { keyArrived } from "../decryption/redecrypt.ts";
import type { DecryptedRoomEvent } from "../decryption/room-events.ts";
import { E2eeError } from "../errors.ts";
import type { MachineStore } from "../machine-context.ts";
import type { RunStep } from "../machine-parts.ts";
import { exportRoomKey, IMPORT_BATCH_SIZE, importRoomKey, prefetchImported } from "./import.ts";

/** Inbound sessions read from the store per page when exporting every room key. */
export const EXPORT_PAGE_SIZE = 1000;

/** See `OlmMachine.importRoomKeys`. */
export async function importRoomKeys(
  run: RunStep,
  pending: PendingEvents,
  keys: readonly unknown[],
  onProgress?: (done: number, total: number) => void,
): Promise<{ imported: number; total: number; redecrypted: DecryptedRoomEvent[] }> {
  let imported = 0;
  const redecrypted: DecryptedRoomEvent[] = [];
  for (let start = 0; start < keys.length; start += IMPORT_BATCH_SIZE) {
    const batch = keys.slice(start, start + IMPORT_BATCH_SIZE);
    imported += await run(async (p) => {
      let count = 0;
      // One store read for the whole batch's existing copies, not one per key.
      await prefetchImported(p.inbound, batch);
      try {
        for (const entry of batch) {
          const update = await importRoomKey(p.inbound, entry);
          if (update === undefined) continue;
          count++;
          await keyArrived(p, pending, update, redecrypted);
        }
      } finally {
        p.inbound.dropPrefetched();
      }
      return count;
    });
    onProgress?.(Math.min(start + IMPORT_BATCH_SIZE, keys.length), keys.length);
  }
  return { imported, total: keys.length, redecrypted };
}

/** See `OlmMachine.exportRoomKeys`. */
export async function exportRoomKeys(
  run: RunStep,
  store: MachineStore,
  roomIds?: Iterable<string>,
): Promise<ExportedRoomKey[]> {
  const out: ExportedRoomKey[] = [];
  if (roomIds === undefined) {
    for await (const page of exportAllRoomKeys(run, store)) out.push(...page);
    return out;
  }
  const rooms = [...new Set(roomIds)];
  return run(async (p) => {
    const unreadable: RoomSessionKey[] = [];
    for (const roomId of rooms) {
      for (const record of await store.getInboundGroupSessionsForRoom(roomId, unreadable)) {
        const entry = exportRoomKey(record);
        if (entry !== undefined) out.push(entry);
      }
    }
    p.inbound.noteDamaged(unreadable);
    return out;
  });
}

/** See `OlmMachine.exportAllRoomKeys`. */
export async function* exportAllRoomKeys(
  run: RunStep,
  store: MachineStore,
  options: { pageSize?: number } = {},
): AsyncGenerator<ExportedRoomKey[]> {
  const limit = options.pageSize ?? EXPORT_PAGE_SIZE;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new E2eeError("BAD_ARGUMENT", "the export page size must be a positive integer");
  }
  let after: { roomId: string; sessionId: string } | undefined;
  for (;;) {
    const cursor = after;
    const records = await run(async (p) => {
      // Damaged rows are read past, so the page is still `limit` records unless it is the last.
      const unreadable: RoomSessionKey[] = [];
      const read = await store.listInboundGroupSessions(
        cursor === undefined ? { limit } : { after: cursor, limit },
        unreadable,
      );
      p.inbound.noteDamaged(unreadable);
      return read;
    });
    const page = records.flatMap((r) => exportRoomKey(r) ?? []);
    if (page.length > 0) yield page;
    const last = records[records.length - 1];
    if (records.length < limit || last === undefined) return;
    after = { roomId: last.roomId, sessionId: last.sessionId };
  }
}
