import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { StoreKeyError } from "../errors.ts";
import { createOrReadKeyFile, readKeyFile } from "./key-file.ts";

const dir = mkdtempSync(join(tmpdir(), "keyroom-key-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));

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
});
