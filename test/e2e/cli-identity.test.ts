// `keyroom identity status`, `identity bootstrap` and `trust USER` spawned against the devserver:
// the JSON lines of the issue 11 contract, exactly.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { accountArgs, cliAccount, runOk, spawnOk } from "../support/cli.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

let hs: TestDevServer;
let dir: string;
const account = (prefix: string) => cliAccount(hs, dir, prefix);

before(async () => {
  hs = await startTestDevServer();
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-identity-"));
});
after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

describe("keyroom identity / trust", () => {
  test("status, bootstrap (password from the environment), and trust of another user", async () => {
    const alice = account("alice");
    const bob = account("bob");
    for (const a of [alice, bob]) {
      await runOk(accountArgs("register", hs.baseUrl, a.name, a.profile));
    }
    const before = await spawnOk(["identity", "status", "--profile", alice.profile]);
    assert.deepEqual(before, [
      { user_id: alice.userId, master_key: null, cross_signed: false, verified: false },
    ]);

    const boot = await spawnOk(["identity", "bootstrap", "--profile", alice.profile], {
      KEYROOM_PASSWORD: "pw",
    });
    assert.equal(boot.length, 1);
    const line = boot[0] as Record<string, unknown>;
    assert.deepEqual(Object.keys(line), ["user_id", "master_key", "cross_signed", "verified"]);
    assert.equal(line.user_id, alice.userId);
    assert.match(String(line.master_key), /^[A-Za-z0-9+/]{43}$/);
    assert.equal(line.cross_signed, true);
    assert.equal(line.verified, true);
    // Again: nothing new, the same identity.
    assert.deepEqual(await runOk(["identity", "bootstrap", "--profile", alice.profile]), boot);

    const trust = await spawnOk(["trust", alice.userId, "--profile", bob.profile]);
    assert.equal(trust.length, 2, JSON.stringify(trust));
    const [device, identity] = trust;
    assert.deepEqual(Object.keys(device ?? {}), [
      "user_id",
      "device_id",
      "ed25519",
      "cross_signed",
      "verified",
      "local",
    ]);
    assert.equal(device?.user_id, alice.userId);
    assert.equal(device?.cross_signed, true);
    assert.equal(device?.verified, false);
    assert.equal(device?.local, "unset");
    assert.deepEqual(identity, {
      user_id: alice.userId,
      master_key: line.master_key,
      verified: false,
      changed: false,
    });

    // A user without cross-signing: devices not cross-signed, no master key.
    const plain = await runOk(["trust", bob.userId, "--profile", alice.profile]);
    assert.equal(plain[0]?.cross_signed, false);
    assert.deepEqual(plain[plain.length - 1], {
      user_id: bob.userId,
      master_key: null,
      verified: false,
      changed: false,
    });
  });
  // These commands do not sync, so they see no device_lists change: a user already followed was
  // printed from the cache, without the cross-signing identity made since (changed never true).
  test("trust and identity status show an identity made since the profile last looked", async () => {
    const alice = account("fresh");
    const bob = account("freshb");
    const register = (a: { name: string; profile: string }) =>
      runOk(accountArgs("register", hs.baseUrl, a.name, a.profile));
    await register(alice);
    await register(bob);
    const laptop = `${alice.profile}-laptop`;
    await runOk(accountArgs("login", hs.baseUrl, alice.name, laptop));
    // Both look once, before the identity exists: alice is followed from now on.
    const before = await runOk(["trust", alice.userId, "--profile", bob.profile]);
    assert.equal(before.at(-1)?.master_key, null);
    assert.equal((await runOk(["identity", "status", "--profile", laptop]))[0]?.master_key, null);

    const [made] = await runOk(["identity", "bootstrap", "--password", "pw", "--profile", alice.profile]);
    const masterKey = made?.master_key;
    assert.match(String(masterKey), /^[A-Za-z0-9+/]{43}$/);

    const after = await runOk(["trust", alice.userId, "--profile", bob.profile]);
    assert.deepEqual(after.at(-1), {
      user_id: alice.userId,
      master_key: masterKey,
      verified: false,
      changed: false,
    });
    assert.ok(
      after.slice(0, -1).some((d) => d.cross_signed === true),
      JSON.stringify(after),
    );
    assert.deepEqual(await runOk(["identity", "status", "--profile", laptop]), [
      { user_id: alice.userId, master_key: masterKey, cross_signed: false, verified: false },
    ]);
  });
});
