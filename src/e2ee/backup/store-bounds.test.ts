// A backup version the store could not keep — an ID past MAX_ID_LENGTH or with a lone surrogate,
// auth_data nesting past MAX_BACKUP_AUTH_DATA_DEPTH — is refused by the engine itself (the client's
// edge refuses it too; an application feeding the engine directly relies on this). Before, it was
// taken and every later save of the backup state failed in the store.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PkDecryption } from "../../crypto/pk/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { MAX_BACKUP_AUTH_DATA_BYTES, MAX_BACKUP_AUTH_DATA_DEPTH } from "../../wire/keys.ts";
import { MAX_ID_LENGTH } from "../limits.ts";
import { OlmMachine } from "../machine.ts";
import { KeyBackupError } from "./errors.ts";

const ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2";

function nested(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

async function machine(): Promise<OlmMachine> {
  const store = await MemoryCryptoStore.open({ userId: "@a:x", deviceId: "A" });
  return OlmMachine.open({ userId: "@a:x", deviceId: "A", store });
}

const badResponse = (e: unknown): boolean => e instanceof KeyBackupError && e.code === "BAD_RESPONSE";

describe("backup versions the store could not keep", () => {
  it("are refused by checkVersion; one within the bounds is taken", async () => {
    const m = await machine();
    const publicKey = PkDecryption.create().publicKey;
    const body = (version: string, extra: Record<string, unknown> = {}) => ({
      version,
      algorithm: ALGORITHM,
      auth_data: { public_key: publicKey, ...extra },
    });
    // auth_data itself is one level: `x` nesting MAX - 1 more is the deepest kept.
    for (const bad of [
      body("v".repeat(MAX_ID_LENGTH + 1)),
      body("v\ud800"),
      body("1", { x: nested(MAX_BACKUP_AUTH_DATA_DEPTH) }),
    ]) {
      await assert.rejects(m.backup.checkVersion(bad), badResponse);
    }
    const ok = await m.backup.checkVersion(body("1", { x: nested(MAX_BACKUP_AUTH_DATA_DEPTH - 1) }));
    assert.notEqual(ok.kind, undefined);
    await m.backup.status();
  });

  it(`auth_data past MAX_BACKUP_AUTH_DATA_BYTES (${MAX_BACKUP_AUTH_DATA_BYTES}) is refused, not stored`, async () => {
    const store = await MemoryCryptoStore.open({ userId: "@a:x", deviceId: "A" });
    const m = await OlmMachine.open({ userId: "@a:x", deviceId: "A", store });
    const key = PkDecryption.create();
    // Signatures by keys we do not know: junk a server can add to the version in use without bound.
    const version = (bytes: number) => {
      const junk: Record<string, string> = {};
      for (let i = 0; JSON.stringify(junk).length < bytes; i++) junk[`ed25519:JUNK${i}`] = "s".repeat(86);
      return {
        version: "1",
        algorithm: ALGORITHM,
        auth_data: { public_key: key.publicKey, signatures: { "@a:x": junk } },
      };
    };
    assert.equal((await m.backup.useVersion(version(0), key.exportPrivateKey())).trusted, true);
    const stored = async () => JSON.stringify((await store.getBackupState())?.authData).length;
    const before = await stored();
    await assert.rejects(m.backup.checkVersion(version(MAX_BACKUP_AUTH_DATA_BYTES + 1)), badResponse);
    await assert.rejects(m.backup.useVersion(version(4 * MAX_BACKUP_AUTH_DATA_BYTES)), badResponse);
    assert.equal(await stored(), before);
    assert.equal((await m.backup.status()).uploading, true);
    // Within the bound it is the version's auth_data like any other.
    assert.equal((await m.backup.checkVersion(version(MAX_BACKUP_AUTH_DATA_BYTES - 300))).kind, "same");
    assert.ok((await stored()) > MAX_BACKUP_AUTH_DATA_BYTES - 300);
  });

  it("a created version's ID is checked the same way", async () => {
    for (const [id, accepted] of [
      ["v".repeat(MAX_ID_LENGTH + 1), false],
      ["v\udc00", false],
      ["v".repeat(MAX_ID_LENGTH), true],
    ] as const) {
      const m = await machine();
      const { request } = await m.backup.prepareVersion();
      const created = m.backup.versionCreated(request.id, { version: id });
      if (accepted) assert.equal(await created, id);
      else await assert.rejects(created, badResponse);
      await m.backup.status();
    }
  });
});
