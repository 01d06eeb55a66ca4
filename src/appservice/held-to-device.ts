// The to-device messages held for a starting virtual user (starting-users.ts), on disk. Room keys
// travel in them and are sent once: the transaction that brought them is acknowledged once they
// are held, so held only in memory, a crash before the user's start handed them over lost them
// for good (its device then can never read those messages). With `dataDir`, each transaction's
// share for a starting user is written here (synced, then renamed into place) before the
// transaction is acknowledged, read back when that user starts again (in this process or the
// next), and removed once its start has handed them to its client.
//
// One folder per user (named by a hash of its user ID; the ID is in each file too), one file per
// transaction, named so that they sort in the order they were taken. The window's device-list
// changes are held in memory only, but that some were is marked on disk (`LISTS_MARK`): a start
// after a crash then takes every device list as outdated, rather than keep one gone stale.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../client/logger.ts";
import type { AppserviceToDevice } from "../wire/appservice.ts";
import type { StartingUsers } from "./starting-users.ts";
import { parseTransaction } from "./transaction.ts";

/** The folder under the appservice's `dataDir`. */
export const HELD_TO_DEVICE_DIR = "held-to-device";

const SUFFIX = ".json";
/** In a user's folder: device-list changes were held for it. */
const LISTS_MARK = "device-lists-changed";

/** One transaction's to-device messages for one starting user, as read back. */
export interface HeldToDeviceTxn {
  readonly txnId: string;
  readonly toDevice: AppserviceToDevice[];
}

export class HeldToDeviceStore {
  readonly dir: string;
  readonly #logger: Logger;
  #next = 0;
  /** Users whose `LISTS_MARK` this process wrote (one per starting user at most). */
  readonly #marked = new Set<string>();

  constructor(dataDir: string, logger: Logger) {
    this.dir = join(dataDir, HELD_TO_DEVICE_DIR);
    this.#logger = logger;
  }

  /**
   * Each starting user's to-device messages held from transaction `txnId`, on disk (once). Called
   * before the transaction is acknowledged; a failure refuses it, and its retry writes them.
   */
  async persistFrom(starting: StartingUsers, txnId: string): Promise<void> {
    for (const userId of starting.userIds) {
      if (!this.#marked.has(userId) && starting.holdsDeviceLists(userId)) {
        await this.#writeSynced(userId, LISTS_MARK, "");
        this.#marked.add(userId);
      }
      const held = starting.heldFrom(userId, txnId);
      if (held === undefined || held.onDisk === true) continue;
      await this.write(userId, txnId, held.toDevice);
      held.onDisk = true;
    }
  }

  /** What a start of `userId` held on disk (one that crashed, or failed), before what is held now. */
  async restoreInto(starting: StartingUsers, userId: string): Promise<void> {
    const txns = await this.read(userId, (name) =>
      this.#logger.error({ userId, name }, "held to-device messages could not be read; set aside as .bad"),
    );
    const marked = existsSync(join(this.#userDir(userId), LISTS_MARK));
    const toDevice = starting.restore(userId, txns, marked);
    if (toDevice > 0)
      this.#logger.warn({ userId, toDevice }, "past MAX_TO_DEVICE_HELD_WHILE_STARTING: dropped");
  }

  #userDir(userId: string): string {
    return join(this.dir, createHash("sha256").update(userId).digest("hex").slice(0, 32));
  }

  async #names(userId: string): Promise<string[]> {
    try {
      return (await readdir(this.#userDir(userId))).filter((n) => n.endsWith(SUFFIX)).sort();
    } catch (e) {
      if ((e as { code?: unknown }).code === "ENOENT") return [];
      throw e;
    }
  }

  /** Writes (durably) transaction `txnId`'s messages for `userId`; nothing when there are none. */
  async write(userId: string, txnId: string, toDevice: readonly AppserviceToDevice[]): Promise<void> {
    if (toDevice.length === 0) return;
    // Time first, then a counter within this process: names sort in the order they were taken.
    const name = `${Date.now().toString().padStart(15, "0")}-${String(this.#next++).padStart(9, "0")}`;
    await this.#writeSynced(
      userId,
      `${name}${SUFFIX}`,
      JSON.stringify({ user_id: userId, txn_id: txnId, to_device: toDevice }),
    );
  }

  /** `text` as `userId`'s file `name`: synced, then renamed into place. */
  async #writeSynced(userId: string, name: string, text: string): Promise<void> {
    const dir = this.#userDir(userId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, name);
    const tmp = `${file}.tmp`;
    const handle = await open(tmp, "w", 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  }

  /**
   * What is held on disk for `userId`, oldest first, each checked again (as a transaction's
   * to-device list, addressed to this user). A file that does not read is renamed `*.bad` and left
   * out (reported through `onBad`), not retried for ever.
   */
  async read(userId: string, onBad: (name: string) => void): Promise<HeldToDeviceTxn[]> {
    const out: HeldToDeviceTxn[] = [];
    // Each transaction once, as `StartingUsers` holds it.
    const seen = new Set<string>();
    const dir = this.#userDir(userId);
    for (const file of await this.#names(userId)) {
      const name = file.slice(0, -SUFFIX.length);
      try {
        const raw = JSON.parse(await readFile(join(dir, file), "utf8")) as Record<string, unknown>;
        if (raw.user_id !== userId || typeof raw.txn_id !== "string")
          throw new Error("not held for this user");
        const toDevice = parseTransaction({ events: [], to_device: raw.to_device }).toDevice;
        if (seen.has(raw.txn_id)) continue;
        seen.add(raw.txn_id);
        out.push({ txnId: raw.txn_id, toDevice: toDevice.filter((m) => m.to_user_id === userId) });
      } catch {
        await rename(join(dir, file), join(dir, `${name}.bad`));
        onBad(name);
      }
    }
    return out;
  }

  /**
   * Forgets what was held for `userId` once its start handed it over. A failure is logged: the
   * messages are then handed over again at its next start (an Olm one, decrypted already,
   * then fails to decrypt), never lost.
   */
  async release(userId: string): Promise<void> {
    const dir = this.#userDir(userId);
    try {
      for (const file of await this.#names(userId)) await rm(join(dir, file), { force: true });
      await rm(join(dir, LISTS_MARK), { force: true });
      this.#marked.delete(userId);
    } catch (e) {
      this.#logger.warn(
        { userId, err: e instanceof Error ? e.name : "error" },
        "held to-device messages not removed",
      );
    }
  }
}
