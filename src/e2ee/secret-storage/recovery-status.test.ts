// Recovery's status: each problem of secret storage, with what the device holds and the server
// has, maps to exactly one repairing call.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { recoveryStatus } from "./recovery-status.ts";
import type { SecretStorageProblem, SecretStorageStatus } from "./status.ts";

const MASTER = "m.cross_signing.master";
const SSK = "m.cross_signing.self_signing";
const USK = "m.cross_signing.user_signing";
const BACKUP = "m.megolm_backup.v1";
const ALL = new Set([MASTER, SSK, USK, BACKUP]);

const storage = (...problems: SecretStorageProblem[]): SecretStorageStatus => ({
  state: problems.length === 0 ? "enabled" : "incomplete",
  defaultKeyId: "K",
  problems,
  missing: [],
});
const facts = (
  held: Iterable<string>,
  more: { identityPublished?: boolean; backupVersion?: boolean; backupOff?: boolean } = {},
) => ({
  held: new Set(held),
  identityPublished: more.identityPublished ?? true,
  backupVersion: more.backupVersion ?? true,
  ...(more.backupOff === undefined ? {} : { backupOff: more.backupOff }),
});

describe("recoveryStatus", () => {
  it("disabled and enabled", () => {
    assert.deepEqual(recoveryStatus({ state: "disabled", problems: [], missing: [] }, facts([])), {
      state: "disabled",
      missing: [],
    });
    assert.deepEqual(recoveryStatus(storage(), facts([])), { state: "enabled", missing: [] });
  });

  it("a broken key: a new key if this device holds the identity, else a reset", () => {
    for (const p of [
      { kind: "no_default_key" },
      { kind: "default_key_malformed" },
      { kind: "key_missing", keyId: "K" },
      { kind: "key_malformed", keyId: "K", code: "BAD_KEY_DESCRIPTION" },
    ] as SecretStorageProblem[]) {
      const withKeys = recoveryStatus(storage(p), facts(ALL));
      assert.equal(withKeys.state, "incomplete");
      assert.equal(withKeys.missing[0]?.repair, "changeRecoveryKey");
      assert.equal(recoveryStatus(storage(p), facts([BACKUP])).missing[0]?.repair, "resetIdentity");
    }
    // Every secret problem under a broken key takes the key's repair.
    const both = recoveryStatus(
      storage({ kind: "no_default_key" }, { kind: "secret_missing", secret: SSK }),
      facts(ALL),
    );
    assert.deepEqual(
      both.missing.map((m) => [m.name, m.repair]),
      [
        ["m.secret_storage.default_key", "changeRecoveryKey"],
        [SSK, "changeRecoveryKey"],
      ],
    );
  });

  it("a secret missing, corrupt or stale: recover when held here (or the backup), else reset", () => {
    for (const kind of ["secret_missing", "secret_malformed"] as const) {
      assert.deepEqual(recoveryStatus(storage({ kind, secret: MASTER }), facts(ALL)).missing, [
        { name: MASTER, problem: kind, repair: "recover" },
      ]);
      assert.equal(
        recoveryStatus(storage({ kind, secret: MASTER }), facts([])).missing[0]?.repair,
        "resetIdentity",
      );
      assert.equal(
        recoveryStatus(storage({ kind, secret: BACKUP }), facts([])).missing[0]?.repair,
        "recover",
      );
    }
    const corrupt = recoveryStatus(
      storage({ kind: "secret_corrupt", secret: USK, keyId: "K", code: "BAD_MAC" }),
      facts([]),
    );
    assert.equal(corrupt.missing[0]?.repair, "resetIdentity");
    const stale = recoveryStatus(storage({ kind: "secret_mismatch", secret: SSK, keyId: "K" }), facts([SSK]));
    assert.equal(stale.missing[0]?.repair, "recover");
  });

  it("when anything needs a reset, the reset is named for everything (recover would fail first)", () => {
    const status = recoveryStatus(
      storage({ kind: "secret_missing", secret: MASTER }, { kind: "secret_missing", secret: BACKUP }),
      facts([SSK]),
    );
    assert.deepEqual(
      status.missing.map((m) => m.repair),
      ["resetIdentity", "resetIdentity"],
    );
  });

  it("a weak key (its check passed): recover to read until the identity is held here, then a new key", () => {
    const weak: SecretStorageProblem = { kind: "key_weak", keyId: "K" };
    const missingBackup: SecretStorageProblem = { kind: "secret_missing", secret: BACKUP };
    const held = recoveryStatus(storage(weak, missingBackup), facts(ALL));
    assert.equal(held.state, "incomplete");
    assert.deepEqual(
      held.missing.map((m) => [m.name, m.problem, m.repair]),
      [
        ["m.secret_storage.key.K", "key_weak", "changeRecoveryKey"],
        [BACKUP, "secret_missing", "changeRecoveryKey"],
      ],
    );
    // recover reads under a weak key; it is what gets the cross-signing keys onto this device.
    assert.deepEqual(
      recoveryStatus(storage(weak, missingBackup), facts([])).missing.map((m) => m.repair),
      ["recover", "recover"],
    );
    assert.deepEqual(
      recoveryStatus(storage(weak), facts(ALL, { backupVersion: false })).missing.map((m) => m.repair),
      ["changeRecoveryKey", "changeRecoveryKey"],
    );
  });

  it("no identity or no backup on the server", () => {
    assert.deepEqual(recoveryStatus(storage(), facts(ALL, { identityPublished: false })).missing, [
      { name: MASTER, problem: "identity_missing", repair: "resetIdentity" },
    ]);
    assert.deepEqual(recoveryStatus(storage(), facts(ALL, { backupVersion: false })).missing, [
      { name: BACKUP, problem: "backup_missing", repair: "recover" },
    ]);
  });

  it("backup turned off in account data: nothing about the backup is missing, the rest still is", () => {
    const off = { backupVersion: false, backupOff: true };
    assert.deepEqual(recoveryStatus(storage(), facts(ALL, off)), { state: "enabled", missing: [] });
    for (const p of [
      { kind: "secret_missing", secret: BACKUP },
      { kind: "secret_corrupt", secret: BACKUP, keyId: "K", code: "BAD_MAC" },
      { kind: "secret_mismatch", secret: BACKUP, keyId: "K" },
    ] as SecretStorageProblem[]) {
      assert.deepEqual(recoveryStatus(storage(p), facts([], off)), { state: "enabled", missing: [] });
    }
    assert.deepEqual(
      recoveryStatus(storage({ kind: "secret_missing", secret: SSK }), facts(ALL, off)).missing,
      [{ name: SSK, problem: "secret_missing", repair: "recover" }],
    );
    // A broken key is still named (it is not the backup's).
    assert.deepEqual(
      recoveryStatus(storage({ kind: "no_default_key" }), facts(ALL, off)).missing.map((m) => m.name),
      ["m.secret_storage.default_key"],
    );
  });
});
