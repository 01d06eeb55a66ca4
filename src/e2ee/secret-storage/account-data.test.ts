import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { deriveKeyFromPassphrase, newPassphraseInfo } from "../../crypto/secret-storage/index.ts";
import {
  buildSecretContent,
  keyIdOfType,
  MAX_KEYS_PER_SECRET,
  newSecretStorageKey,
  parseDefaultKey,
  parseKeyDescription,
  parseSecretContent,
} from "./account-data.ts";
import { keyType } from "./names.ts";
import { code, mautrix } from "./test-support/fixtures.ts";
import { readSecret, unlockWithKey, unlockWithPassphrase, unlockWithRecoveryKey } from "./unlock.ts";

describe("secret storage account data", () => {
  it("parses mautrix's key descriptions (with and without passphrase)", () => {
    const d1 = parseKeyDescription(mautrix.key1.key_id, mautrix.key1.content);
    assert.equal(d1.passphrase?.iterations, 500_000);
    assert.ok(d1.check !== undefined);
    const d2 = parseKeyDescription(mautrix.key2.key_id, mautrix.key2.content);
    assert.equal(d2.passphrase, undefined);
    assert.equal(
      code(() => parseKeyDescription("k", mautrix.key2_broken_iv)),
      "BAD_KEY_DESCRIPTION",
    );
    assert.equal(
      code(() => parseKeyDescription("k", { algorithm: "m.other" })),
      "UNSUPPORTED_ALGORITHM",
    );
    assert.equal(
      code(() => parseKeyDescription("k", { algorithm: 1 })),
      "BAD_KEY_DESCRIPTION",
    );
    assert.equal(keyIdOfType(keyType("abc")), "abc");
    assert.equal(keyIdOfType("m.secret_storage.default_key"), undefined);
    assert.equal(parseDefaultKey({ key: "abc" }), "abc");
  });
  it("a new random key: description, recovery key and secrets that other readers open", () => {
    const k = newSecretStorageKey({ name: "Recovery key" });
    const data = new Map<string, unknown>([[keyType(k.keyId), k.content]]);
    const description = parseKeyDescription(k.keyId, k.content);
    assert.equal(description.name, "Recovery key");
    const unlocked = unlockWithRecoveryKey(description, k.recoveryKey);
    data.set("m.megolm_backup.v1", buildSecretContent("m.megolm_backup.v1", "c2VjcmV0", [k]));
    assert.equal(readSecret(data, "m.megolm_backup.v1", unlocked), "c2VjcmV0");
  });
  it("a passphrase key (derived by the caller) unlocks with the passphrase and the recovery key", () => {
    const passphrase = newPassphraseInfo();
    const derived = deriveKeyFromPassphrase("hunter2 but longer", passphrase);
    const k = newSecretStorageKey({ key: derived, passphrase });
    const description = parseKeyDescription(k.keyId, k.content);
    assert.deepEqual(unlockWithPassphrase(description, "hunter2 but longer").key, derived);
    assert.deepEqual(unlockWithRecoveryKey(description, k.recoveryKey).key, derived);
    assert.equal(
      code(() => newSecretStorageKey({ key: derived })),
      "BAD_ARGUMENT",
    );
  });
  it("stores a secret under several keys, keeping other keys' entries when adding one", () => {
    const a = newSecretStorageKey();
    const b = newSecretStorageKey();
    const c = newSecretStorageKey();
    const first = buildSecretContent("s", "value", [a, b]);
    const both = buildSecretContent("s", "value", [c], first);
    assert.deepEqual(Object.keys(both.encrypted).sort(), [a.keyId, b.keyId, c.keyId].sort());
    assert.deepEqual(both.encrypted[a.keyId], first.encrypted[a.keyId]);
    const data = new Map<string, unknown>([["s", both]]);
    for (const k of [a, b, c]) {
      assert.equal(
        readSecret(data, "s", unlockWithKey(parseKeyDescription(k.keyId, k.content), k.key)),
        "value",
      );
    }
  });
  it("keeps a secret's good entries when another is malformed, and bounds the key count", () => {
    const a = newSecretStorageKey();
    const content = buildSecretContent("s", "v", [a]);
    const parsed = parseSecretContent({ encrypted: { ...content.encrypted, other: { iv: "x" } } });
    assert.ok(parsed.encrypted.has(a.keyId));
    assert.equal(parsed.malformed.get("other")?.code, "BAD_ENCRYPTED_SECRET");
    const many = Object.fromEntries(
      Array.from({ length: MAX_KEYS_PER_SECRET + 1 }, (_, i) => [`k${i}`, content.encrypted[a.keyId]]),
    );
    assert.equal(
      code(() => parseSecretContent({ encrypted: many })),
      "BAD_ENCRYPTED_SECRET",
    );
    assert.equal(
      code(() => parseSecretContent({})),
      "BAD_ENCRYPTED_SECRET",
    );
  });
  it("parsers throw only SecretStorageError for any JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string({ maxLength: 40 }), (value, id) => {
        code(() => parseKeyDescription(id.length > 0 ? id : "k", value));
        code(() => parseSecretContent(value));
        code(() => parseSecretContent({ encrypted: value }));
        code(() => parseDefaultKey(value));
      }),
      { numRuns: 400 },
    );
  });
});
