import assert from "node:assert/strict";
import fs, { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { StoreKeyError } from "../errors.ts";
import { createOrReadKeyFile, readKeyFile } from "./key-file.ts";

const dir = mkdtempSync(join(tmpdir(), "keyroom-key-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Whether the call `name(...args)` writes to `path` in place (a reader could see it partly written). */
function writesInPlace(name: string, args: readonly unknown[], path: string): boolean {
  if (args[0] !== path) return false;
  if (name === "writeFileSync") return true;
  if (name !== "openSync") return false;
  const flags = args[1];
  if (typeof flags === "number") return (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR)) !== 0;
  return typeof flags === "string" && /[wa+]/.test(flags);
}

/** The file-system calls a key file's creation may make (the module imports them from node:fs). */
const HOOKED = [
  "openSync",
  "writeSync",
  "fsyncSync",
  "closeSync",
  "linkSync",
  "unlinkSync",
  "renameSync",
  "writeFileSync",
  "readFileSync",
  "statSync",
] as const;

/**
 * Runs `body` with `before(step, name, args)` called before each of its file-system calls (steps
 * counted from 0), so another "process" can act at exactly that point, deterministically. What
 * `before` does itself is not hooked. Returns `body`'s result and how many calls it made.
 */
function stepped<T>(
  body: () => T,
  before: (step: number, name: string, args: readonly unknown[]) => void,
): { result: T; steps: number } {
  const mutable = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = new Map<string, (...args: unknown[]) => unknown>();
  let steps = 0;
  let outside = false;
  for (const name of HOOKED) {
    const original = mutable[name];
    assert.ok(original);
    originals.set(name, original);
    mutable[name] = (...args: unknown[]) => {
      if (!outside) {
        outside = true;
        try {
          before(steps++, name, args);
        } finally {
          outside = false;
        }
      }
      return original(...args);
    };
  }
  // The ESM bindings of node:fs follow the CommonJS object only when told to.
  syncBuiltinESMExports();
  try {
    return { result: body(), steps };
  } finally {
    for (const [name, original] of originals) mutable[name] = original;
    syncBuiltinESMExports();
  }
}

describe("store key file", () => {
  it("is created 0600 with a 32-byte key, read back by a second opener, with no temporary left", () => {
    const path = join(dir, "a.key");
    const key = createOrReadKeyFile(path);
    assert.equal(key.length, 32);
    if (process.platform !== "win32") assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(createOrReadKeyFile(path), key, "an existing key file is read, never replaced");
    assert.deepEqual(readKeyFile(path), key);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith(".new")),
      [],
    );
  });

  it("refuses an empty or short file rather than making a new key beside data sealed with another", () => {
    const path = join(dir, "short.key");
    writeFileSync(path, "", { mode: 0o600 });
    assert.throws(
      () => createOrReadKeyFile(path),
      (e) => e instanceof StoreKeyError && e.code === "KEY_FILE_MALFORMED",
    );
  });

  it("another process at any step of a creation reads the whole key or none, and both end with one key", () => {
    const { steps } = stepped(
      () => createOrReadKeyFile(join(dir, "count.key")),
      () => {},
    );
    assert.ok(steps >= 2);
    const inPlace = new Set<string>();
    for (let k = 0; k < steps; k++) {
      const sub = join(dir, `race-${k}`);
      mkdirSync(sub);
      const path = join(sub, "store.key");
      let at = "";
      /** What the other process found: nothing yet (KEY_FILE_MISSING), or a key; any other error. */
      let read: Uint8Array | Error | undefined;
      let second: Uint8Array | Error | undefined;
      // Recorded, not asserted, in the hook: the code under test would catch the assertion.
      const { result: first } = stepped(
        () => createOrReadKeyFile(path),
        (step, name, args) => {
          if (writesInPlace(name, args, path)) inPlace.add(name);
          if (step !== k) return;
          at = name;
          // A reader (a process opening the store, whose header is already committed).
          try {
            read = readKeyFile(path);
          } catch (e) {
            read = e instanceof StoreKeyError && e.code === "KEY_FILE_MISSING" ? undefined : (e as Error);
          }
          // A second creator (a process opening the new store at the same time).
          try {
            second = createOrReadKeyFile(path);
          } catch (e) {
            second = e as Error;
          }
        },
      );
      const where = `another process before the creator's ${at} (step ${k})`;
      assert.ok(!(read instanceof Error), `${where}: the reader failed: ${String(read)}`);
      assert.ok(!(second instanceof Error), `${where}: the second creator failed: ${String(second)}`);
      assert.ok(second !== undefined);
      assert.deepEqual(second, first, `${where}: both creators use the same key`);
      if (read !== undefined) assert.deepEqual(read, first, `${where}: the reader read the key used`);
      assert.deepEqual(readKeyFile(path), first, `${where}: the file holds it`);
      assert.deepEqual(readdirSync(sub), ["store.key"], `${where}: one key file, no temporary left`);
    }
    // The key file appears whole (linked or renamed into place), never written under its own name
    // (one call may do both: a race inside it is out of this hook's reach).
    assert.deepEqual([...inPlace], [], "the key file is written in place");
  });

  it("a creator killed at any step leaves no key file that a later opener would refuse", () => {
    const { steps } = stepped(
      () => createOrReadKeyFile(join(dir, "count-killed.key")),
      () => {},
    );
    const killed = join(dir, "killed");
    mkdirSync(killed);
    for (let k = 0; k < steps; k++) {
      const path = join(killed, `${k}.key`);
      let at = "";
      let dead = false;
      // From step k on, nothing the creator does reaches the file system (closing aside, which
      // writes nothing and keeps this test from leaking descriptors).
      const died = (): void => {
        const error = new Error("killed") as Error & { code: string };
        error.code = "EIO";
        throw error;
      };
      try {
        stepped(
          () => createOrReadKeyFile(path),
          (step, name) => {
            if (step === k) {
              at = name;
              dead = true;
            }
            if (dead && name !== "closeSync") died();
          },
        );
      } catch {
        // The creator's own end; what matters is what it left behind.
      }
      let key: Uint8Array;
      try {
        key = createOrReadKeyFile(path);
      } catch (e) {
        assert.fail(`killed before its ${at} (step ${k}), the creator left a key file refused later: ${e}`);
      }
      assert.equal(key.length, 32);
      assert.deepEqual(readKeyFile(path), key, `killed before its ${at} (step ${k})`);
    }
  });
});
