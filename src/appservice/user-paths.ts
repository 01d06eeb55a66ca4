// Where each virtual user keeps its state under an appservice's `dataDir`: one directory per
// user, named from its user ID (never shared by two users of a namespace).
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DEFAULT_SQLITE_FILE_NAME } from "../store/index.ts";

/** Each virtual user's client store, in its directory under `dataDir`. */
export const CLIENT_STORE_FILE = "client.sqlite3";

/** The usual user IDs: their directory names are as earlier versions made them. */
const PLAIN_USER_ID = /^@[A-Za-z0-9._=-]+:(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * A user ID as a directory name (no separators, no dots-only names), one per user: the usual IDs
 * of one server map one to one by replacing `@`, `:` and brackets with `_`; any other (a localpart
 * with `/` or `+`, say, which that replacement would have given another user's directory) gets a
 * name with `~` and a hash of the ID, which no usual ID's name has.
 */
function userDirName(userId: string): string {
  const name = userId.replace(/[^A-Za-z0-9._=-]/g, "_");
  if (PLAIN_USER_ID.test(userId)) return name;
  return `${name.slice(0, 100)}~${createHash("sha256").update(userId).digest("hex").slice(0, 32)}`;
}

/**
 * Where a virtual user keeps its state under an appservice's `dataDir`: its directory, the client
 * store (session, device ID, rooms) and the crypto store (its device's keys). A session without
 * its crypto store is a device whose keys are gone.
 */
export function virtualUserPaths(
  dataDir: string,
  userId: string,
): { dir: string; clientStore: string; cryptoStore: string } {
  const dir = join(dataDir, userDirName(userId));
  return {
    dir,
    clientStore: join(dir, CLIENT_STORE_FILE),
    cryptoStore: join(dir, DEFAULT_SQLITE_FILE_NAME),
  };
}
