/** Hostile cross-signing keys in `/keys/query` (a malicious homeserver): the pinned identity holds. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Account } from "../../src/crypto/olm/index.ts";
import { afterCase, LONE, makeWorld, snapshot, type World } from "./world.ts";

type Keys = Record<string, Record<string, unknown>>;
type Tamper = (keys: Keys, w: World) => void;

const keyOf = (k: Record<string, unknown>): string =>
  Object.values(k.keys as Record<string, string>)[0] ?? "";

const CASES: [string, Tamper][] = [
  [
    "master key filed under another user",
    (k) => {
      k.master = { ...k.master, user_id: "@mallory:x" };
    },
  ],
  [
    "master key with another usage",
    (k) => {
      k.master = { ...k.master, usage: ["self_signing"] };
    },
  ],
  [
    "master key with no keys",
    (k) => {
      k.master = { ...k.master, keys: {} };
    },
  ],
  [
    "master key with two keys",
    (k) => {
      k.master = { ...k.master, keys: { ...(k.master?.keys as object), "ed25519:other": "b3RoZXI" } };
    },
  ],
  [
    "master key not base64",
    (k) => {
      k.master = { ...k.master, keys: { "ed25519:!!!": "!!!" } };
    },
  ],
  [
    "master key ID with a lone surrogate",
    (k) => {
      k.master = { ...k.master, keys: { [`ed25519:${LONE}`]: LONE } };
    },
  ],
  [
    "self-signing key without the master's signature",
    (k) => {
      k.self_signing = { ...k.self_signing, signatures: {} };
    },
  ],
  [
    "self-signing key signed by another key",
    (k) => {
      const other = Account.create();
      const sigs = k.self_signing?.signatures as Record<string, Record<string, string>>;
      const user = Object.keys(sigs)[0] ?? "";
      k.self_signing = {
        ...k.self_signing,
        signatures: {
          [user]: { [`ed25519:${other.identityKeys.ed25519}`]: Object.values(sigs[user] ?? {})[0] ?? "" },
        },
      };
    },
  ],
  [
    "self-signing key changed after signing",
    (k) => {
      k.self_signing = { ...k.self_signing, keys: { "ed25519:AAAA": "AAAA" } };
    },
  ],
  [
    "self-signing key is a string",
    (k) => {
      (k as Record<string, unknown>).self_signing = "nope";
    },
  ],
  [
    "master key is null",
    (k) => {
      (k as Record<string, unknown>).master = null;
    },
  ],
];

describe("hostile input: cross-signing keys", () => {
  let w: World;
  let pinned: string;
  before(async () => {
    w = await makeWorld();
    await w.alice.bootstrapCrossSigning();
    await w.bob.machine.receiveKeysChanges(["@alice:x"], []);
    await w.bob.flush();
    pinned = (await w.bob.machine.getUserIdentity("@alice:x"))?.masterKey ?? "";
    assert.equal(pinned, keyOf(w.hs.crossSigning.get("@alice:x")?.master ?? {}));
  });
  for (const [name, tamper] of CASES) {
    it(`${name} → the pinned identity stays, nothing breaks`, async () => {
      const state = await snapshot(w);
      const genuine = w.hs.crossSigning.get("@alice:x") as Keys;
      const forged = structuredClone(genuine);
      tamper(forged, w);
      w.hs.crossSigning.set("@alice:x", forged);
      try {
        await w.bob.machine.receiveKeysChanges(["@alice:x"], []);
        await w.bob.flush();
      } finally {
        w.hs.crossSigning.set("@alice:x", genuine);
      }
      const identity = await w.bob.machine.getUserIdentity("@alice:x");
      if (identity !== undefined) {
        assert.equal(identity.verified, false);
        if (identity.masterKey !== pinned)
          assert.equal(identity.changed, true, "a new master key is flagged");
      }
      const [device] = await w.bob.machine.getUserDevices("@alice:x");
      assert.notEqual(device?.verified, true);
      await afterCase(w, state);
      // The genuine keys come back on the next query.
      await w.bob.machine.receiveKeysChanges(["@alice:x"], []);
      await w.bob.flush();
    });
  }
});
