// Node: the client store defaults to memory (an app that restarts picks a file or SQLite store),
// the crypto store to SQLite in `$XDG_DATA_HOME/keyroom/<user>`, JSON requests through `node:http`
// with keep-alive agents (node-http.ts), /sync responses checked by hand before the schema
// (wire/sync-fast.ts), a large backup restore's decryption on worker threads
// (backup-decryptor-node.ts). SQLite and Node's `os`/`path` load only when a crypto
// store is opened, the restore's workers only for a restore.
import { AsyncLocalStorage } from "node:async_hooks";
import { parseCommonSyncResponse } from "../../wire/sync-fast.ts";
import { MemoryClientStore } from "../client-store/memory-store.ts";
import { nodeHttpTransport } from "./node-http.ts";
import type { ClientPlatform, CryptoStoreLocation, WorkContext } from "./types.ts";

async function defaultLocation(userId: string): Promise<CryptoStoreLocation> {
  const { homedir } = await import("node:os");
  const { join } = await import("node:path");
  const base = process.env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  // One directory per account: a store belongs to one user and device.
  const safe = userId.replace(/[^A-Za-z0-9._=-]/g, "_");
  return { directory: join(base, "keyroom", safe) };
}

/**
 * The works the code running now belongs to (each client's sync loop is one), followed through
 * awaits. One storage for all clients: on Node before 24, AsyncLocalStorage propagates every
 * enabled instance on each promise created, so one instance per client slowed every promise in
 * the process in proportion to the clients ever made (4x in tests opening hundreds of clients).
 */
const works = new AsyncLocalStorage<readonly object[]>();

/** Work followed through its awaits: a listener's code after an await is still the work. */
function asyncWorkContext(): WorkContext {
  const token = {};
  const current = (): readonly object[] => works.getStore() ?? [];
  return {
    run: (fn) => works.run([...current(), token], fn),
    exit: (fn) =>
      works.run(
        current().filter((t) => t !== token),
        fn,
      ),
    get active() {
      return current().includes(token);
    },
    tracked: true,
  };
}

export const platform: ClientPlatform = {
  name: "node",
  workContext: asyncWorkContext,
  defaultClientStore: () => new MemoryClientStore(),
  httpTransport: () => nodeHttpTransport(),
  syncFastParse: parseCommonSyncResponse,
  async backupDecryptor() {
    const { nodeBackupDecryptor } = await import("./backup-decryptor-node.ts");
    return nodeBackupDecryptor();
  },
  async openCryptoStore({ location, passphrase, userId, deviceId }) {
    const at = location ?? (await defaultLocation(userId));
    const { SqliteCryptoStore } = await import("../../store/sqlite/sqlite-store.ts");
    return SqliteCryptoStore.open({
      userId,
      ...(deviceId !== undefined ? { deviceId } : {}),
      directory: at.directory,
      ...(at.fileName !== undefined ? { fileName: at.fileName } : {}),
      ...(passphrase !== undefined ? { passphrase } : {}),
    });
  },
};
