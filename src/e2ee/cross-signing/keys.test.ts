import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import { checkCrossSigningKey, checkUserKeys, MAX_CROSS_SIGNING_KEY_SIGNATURES } from "./keys.ts";
import { CROSS_SIGNING_USAGES, SigningKey } from "./private-keys.ts";

type Usage = "master" | "self_signing" | "user_signing";
interface SeededUser {
  user_id: string;
  private: Record<Usage, string>;
  public: Record<Usage, string>;
  master_key: Record<string, unknown>;
  self_signing_key: Record<string, unknown> & { signatures: Record<string, Record<string, string>> };
  user_signing_key: Record<string, unknown> & { signatures: Record<string, Record<string, string>> };
}
const vectors = JSON.parse(
  readFileSync(new URL("../../../test/vectors/cross-signing/jssdk-seeded.json", import.meta.url), "utf8"),
) as { users: SeededUser[] };

const without = (o: Record<string, unknown>, k: string): Record<string, unknown> => {
  const { [k]: _drop, ...rest } = o;
  return rest;
};

describe("cross-signing keys: matrix-js-sdk's seeded test data", () => {
  it("holds seeded users (the tests below are one per user)", () => {
    assert.ok(vectors.users.length > 0);
  });

  for (const u of vectors.users) {
    it(`${u.user_id}: private seeds give the published public keys`, () => {
      for (const usage of CROSS_SIGNING_USAGES) {
        const key = SigningKey.fromSecret(u.private[usage]);
        assert.equal(key?.publicKey, u.public[usage]);
        assert.equal(key?.toSecret(), u.private[usage]);
      }
    });

    it(`${u.user_id}: the keys check out, and our signatures are byte-identical to js-sdk's`, () => {
      const keys = checkUserKeys(u.user_id, u.master_key, u.self_signing_key, u.user_signing_key);
      assert.ok(typeof keys === "object");
      assert.equal(keys.master.publicKey, u.public.master);
      assert.equal(keys.selfSigning?.publicKey, u.public.self_signing);
      assert.equal(keys.userSigning?.publicKey, u.public.user_signing);
      const master = SigningKey.fromSecret(u.private.master) as SigningKey;
      for (const [usage, obj] of [
        ["self_signing", u.self_signing_key],
        ["user_signing", u.user_signing_key],
      ] as const) {
        const fresh = master.signObject(u.user_id, without(obj, "signatures"));
        assert.deepEqual(fresh.signatures, obj.signatures, usage);
        assert.deepEqual(
          master.signObject(
            u.user_id,
            (SigningKey.fromSecret(u.private[usage]) as SigningKey).publicObject(u.user_id, usage),
          ),
          { ...obj, signatures: obj.signatures },
        );
      }
    });

    it(`${u.user_id}: tampering is refused with the right problem`, () => {
      const sig = Object.values(u.self_signing_key.signatures[u.user_id] ?? {})[0] as string;
      const master = checkCrossSigningKey(u.master_key, u.user_id, "master");
      assert.ok(typeof master === "object");
      const flipped = `${sig[0] === "A" ? "B" : "A"}${sig.slice(1)}`;
      const bad = {
        ...u.self_signing_key,
        signatures: { [u.user_id]: { [`ed25519:${u.public.master}`]: flipped } },
      };
      assert.equal(checkCrossSigningKey(bad, u.user_id, "self_signing", master), "NOT_SIGNED_BY_MASTER");
      assert.equal(
        checkCrossSigningKey(u.self_signing_key, u.user_id, "self_signing"),
        "NOT_SIGNED_BY_MASTER",
      );
      assert.equal(checkCrossSigningKey(u.master_key, "@mallory:x", "master"), "USER_ID_MISMATCH");
      assert.equal(checkCrossSigningKey(u.master_key, u.user_id, "self_signing"), "WRONG_USAGE");
      const twoKeys = { ...u.master_key, keys: { a: "b", c: "d" } };
      assert.equal(checkCrossSigningKey(twoKeys, u.user_id, "master"), "BAD_KEY");
      const misnamed = { ...u.master_key, keys: { [`ed25519:${u.public.self_signing}`]: u.public.master } };
      assert.equal(checkCrossSigningKey(misnamed, u.user_id, "master"), "BAD_KEY");
    });
  }

  it("a self-signing key of one user is not accepted under another's master key", () => {
    const [alice, bob] = vectors.users as [SeededUser, SeededUser];
    const keys = checkUserKeys(alice.user_id, alice.master_key, bob.self_signing_key, undefined);
    assert.ok(typeof keys === "object");
    assert.equal(keys.selfSigning, undefined);
  });

  it("too many signatures is TOO_LARGE", () => {
    const [alice] = vectors.users as [SeededUser];
    const many: Record<string, string> = {};
    for (let i = 0; i <= MAX_CROSS_SIGNING_KEY_SIGNATURES; i++) many[`ed25519:D${i}`] = "x";
    assert.equal(
      checkCrossSigningKey({ ...alice.master_key, signatures: { "@a:x": many } }, alice.user_id, "master"),
      "TOO_LARGE",
    );
  });

  it("never throws, whatever arrives", () => {
    fc.assert(
      fc.property(
        fc.anything(),
        fc.constantFrom<Usage>("master", "self_signing", "user_signing"),
        (raw, usage) => {
          const r = checkCrossSigningKey(raw, "@alice:localhost", usage);
          assert.ok(typeof r === "string" || typeof r === "object");
        },
      ),
    );
  });
});
