/**
 * The key file that protects a SQLite store opened without a passphrase: 32 random bytes (base64)
 * in `<db file>.key` beside the database, created with mode 0600. Anyone who can read both files
 * can read the secrets; the file keeps them out of copies of the database alone (backups, bug
 * reports) and is refused if other users can read it. Node only.
 */
import { closeSync, constants, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { decodeBase64, encodeBase64, randomBytes } from "../../crypto/primitives/symmetric.ts";
import { StoreKeyError } from "../errors.ts";
import { STORE_KEY_LENGTH } from "./store-cipher.ts";

function isMissing(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { code?: unknown }).code === "ENOENT";
}

/** Reads the key file at `path`; throws `StoreKeyError` if it is missing, readable by others or malformed. */
export function readKeyFile(path: string): Uint8Array {
  let text: string;
  try {
    if (process.platform !== "win32" && (statSync(path).mode & 0o077) !== 0) {
      throw new StoreKeyError(
        "KEY_FILE_INSECURE",
        `the store key file ${path} is accessible to other users; run chmod 600 on it`,
      );
    }
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof StoreKeyError) throw e;
    if (isMissing(e)) {
      throw new StoreKeyError(
        "KEY_FILE_MISSING",
        `the store key file ${path} is missing; without it this store's secrets cannot be read`,
      );
    }
    throw new StoreKeyError("KEY_FILE_MALFORMED", `the store key file ${path} could not be read`);
  }
  try {
    const key = decodeBase64(text.trim());
    if (key.length === STORE_KEY_LENGTH) return key;
  } catch {
    // fall through
  }
  throw new StoreKeyError("KEY_FILE_MALFORMED", `the store key file ${path} does not hold a 32-byte key`);
}

/**
 * Creates a new key file (never overwriting one: a key file that exists is read instead, so a
 * store recreated beside it keeps working) and returns its key.
 */
export function createOrReadKeyFile(path: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (e) {
    if (typeof e === "object" && e !== null && (e as { code?: unknown }).code === "EEXIST")
      return readKeyFile(path);
    throw new StoreKeyError("KEY_FILE_MALFORMED", `the store key file ${path} could not be created`);
  }
  const key = randomBytes(STORE_KEY_LENGTH);
  try {
    writeSync(fd, `${encodeBase64(key)}\n`);
  } finally {
    closeSync(fd);
  }
  return key;
}
