/**
 * The key file that protects a SQLite store opened without a passphrase: 32 random bytes (base64)
 * in `<db file>.key` beside the database, created with mode 0600. Anyone who can read both files
 * can read the secrets; the file keeps them out of copies of the database alone (backups, bug
 * reports) and is refused if other users can read it. Node only.
 */
import {
  closeSync,
  constants,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import {
  decodeBase64,
  encodeBase64,
  encodeBase64Url,
  randomBytes,
  wipe,
} from "../../crypto/primitives/symmetric.ts";
import { StoreKeyError } from "../errors.ts";
import { STORE_KEY_LENGTH } from "./store-cipher.ts";

function isCode(e: unknown, code: string): boolean {
  return typeof e === "object" && e !== null && (e as { code?: unknown }).code === code;
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
    if (isCode(e, "ENOENT")) {
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
 * store recreated beside it keeps working) and returns its key. The key is written and synced
 * under a temporary name, then linked into place: another process opening a new store at the same
 * time never reads a half-written file (it finds none, or the whole one), a crash leaves no empty
 * one, and the file is on disk before the store header that needs it is committed.
 */
export function createOrReadKeyFile(path: string): Uint8Array {
  const temporary = `${path}.${encodeBase64Url(randomBytes(9))}.new`;
  const key = randomBytes(STORE_KEY_LENGTH);
  try {
    const fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      writeSync(fd, `${encodeBase64(key)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temporary, path);
    } catch (e) {
      if (!isCode(e, "EEXIST")) throw e;
      wipe(key);
      return readKeyFile(path);
    }
    syncDirectory(dirname(path));
    return key;
  } catch (e) {
    if (e instanceof StoreKeyError) throw e;
    // The system's code (EACCES, ENOSPC, EPERM for a file system without hard links...) says why.
    const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
    throw new StoreKeyError(
      "KEY_FILE_MALFORMED",
      `the store key file ${path} could not be created${typeof code === "string" ? ` (${code})` : ""}`,
    );
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // never made, or already gone
    }
  }
}

/** Makes a new directory entry durable (where the platform allows opening a directory). */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Windows cannot open a directory; its file system orders the entry itself.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
