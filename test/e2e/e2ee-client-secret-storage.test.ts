// Secret storage through the devserver (`client.crypto.secretStorage`): keys from a recovery key or
// a passphrase, several keys at once, and each failure with its own typed error.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RecoveryKeyError, SecretStorageError } from "../../src/client/index.ts";
import { encodeRecoveryKey } from "../../src/crypto/recovery-key/index.ts";
import { devServerFixture, fixtureUser } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-4s-");

const code = (c: string) => (e: unknown) => e instanceof SecretStorageError && e.code === c;
const SECRET = "m.cross_signing.master";
const VALUE = "c2VjcmV0IHZhbHVlIG9mIDMyIGJ5dGVzIGV4YWN0bHkh";

describe("secret storage (devserver)", () => {
  it("a random key: the recovery key opens it, a wrong or mistyped one does not", async () => {
    const { client } = await fixtureUser(fx, "ss1");
    const ss = client.crypto.secretStorage;
    assert.equal(await ss.defaultKeyId(), undefined);
    const created = await ss.createKey();
    assert.match(created.recoveryKey, /^Es[1-9A-HJ-NP-Za-km-z]{2}( [1-9A-HJ-NP-Za-km-z]{4}){11}$/);
    assert.equal(await ss.defaultKeyId(), created.keyId);
    await ss.store(SECRET, VALUE, [created.key]);

    const opened = await ss.unlock({ recoveryKey: created.recoveryKey });
    assert.equal(opened.keyId, created.keyId);
    assert.equal(await ss.get(SECRET, opened), VALUE);
    assert.doesNotMatch(JSON.stringify(opened), /key"?:\s*"?[A-Za-z0-9+/]{40}/);

    const other = encodeRecoveryKey(new Uint8Array(32).fill(7));
    await assert.rejects(ss.unlock({ recoveryKey: other }), code("WRONG_KEY"));
    const typo = created.recoveryKey.slice(0, -1) + (created.recoveryKey.endsWith("a") ? "b" : "a");
    await assert.rejects(
      ss.unlock({ recoveryKey: typo }),
      (e: unknown) => e instanceof RecoveryKeyError && e.code === "BAD_PARITY",
    );
    await assert.rejects(ss.unlock({ passphrase: "no passphrase here" }), code("NO_PASSPHRASE"));
    // A string that is no recovery key, for a key without a passphrase: the typo is reported.
    await assert.rejects(
      ss.unlock("no passphrase here"),
      (e: unknown) => e instanceof RecoveryKeyError && e.code === "BAD_LENGTH",
    );
  });

  it("a passphrase key (m.pbkdf2) with progress; the passphrase and the recovery key both open it", async () => {
    const { client } = await fixtureUser(fx, "ss2");
    const ss = client.crypto.secretStorage;
    const progress: number[] = [];
    const created = await ss.createKey({
      passphrase: "correct horse battery staple",
      onProgress: (f) => progress.push(f),
    });
    assert.equal(progress[0], 0);
    assert.equal(progress.at(-1), 1);
    const description = await ss.describeKey();
    assert.equal(description.passphrase?.algorithm, "m.pbkdf2");
    assert.equal(description.passphrase?.iterations, 500_000);
    await ss.store(SECRET, VALUE, [created.key]);
    const byPassphrase = await ss.unlock({ passphrase: "correct horse battery staple" });
    assert.equal(await ss.get(SECRET, byPassphrase), VALUE);
    const byKey = await ss.unlock({ recoveryKey: created.recoveryKey });
    assert.equal(await ss.get(SECRET, byKey), VALUE);
    await assert.rejects(ss.unlock({ passphrase: "wrong horse" }), code("WRONG_KEY"));
    // One string for either: the recovery key, or (not being one) the passphrase.
    assert.equal(await ss.get(SECRET, await ss.unlock(created.recoveryKey)), VALUE);
    assert.equal(await ss.get(SECRET, await ss.unlock("correct horse battery staple")), VALUE);
    await assert.rejects(ss.unlock("wrong horse"), code("WRONG_KEY"));
  });

  it("several keys at once; missing, corrupt and foreign secrets each have their own error", async () => {
    const { client } = await fixtureUser(fx, "ss3");
    const ss = client.crypto.secretStorage;
    const first = await ss.createKey();
    const second = await ss.createKey({ setDefault: false });
    assert.equal(await ss.defaultKeyId(), first.keyId);
    await ss.store(SECRET, VALUE, [first.key]);
    // Adding the second key keeps the first key's entry.
    await ss.store(SECRET, VALUE, [second.key]);
    const viaSecond = await ss.unlock({ recoveryKey: second.recoveryKey }, second.keyId);
    assert.equal(await ss.get(SECRET, viaSecond), VALUE);
    assert.equal(await ss.get(SECRET, first.key), VALUE);

    await assert.rejects(ss.get("m.megolm_backup.v1", first.key), code("SECRET_MISSING"));
    await ss.store("m.cross_signing.self_signing", VALUE, [second.key]);
    await assert.rejects(
      ss.get("m.cross_signing.self_signing", first.key),
      code("SECRET_NOT_ENCRYPTED_FOR_KEY"),
    );

    // Corrupt the first key's entry: its MAC no longer matches.
    const stored = (await ss.view([SECRET])).get(SECRET) as { encrypted: Record<string, { mac: string }> };
    const entry = stored.encrypted[first.keyId];
    assert.ok(entry);
    entry.mac = entry.mac.startsWith("A") ? `B${entry.mac.slice(1)}` : `A${entry.mac.slice(1)}`;
    await client.setAccountData(SECRET, stored);
    await assert.rejects(ss.get(SECRET, first.key), code("BAD_MAC"));
    // The other key's entry still reads.
    assert.equal(await ss.get(SECRET, viaSecond), VALUE);

    const status = await ss.status({ key: first.key, secrets: [SECRET] });
    assert.equal(status.state, "incomplete");
    assert.deepEqual(status.missing, [SECRET]);
    assert.equal(status.problems[0]?.kind, "secret_corrupt");
    // Switching the default key.
    await ss.setDefaultKey(second.keyId);
    assert.equal(await ss.defaultKeyId(), second.keyId);
    await assert.rejects(ss.setDefaultKey("nosuchkey"), code("KEY_MISSING"));
  });
});
