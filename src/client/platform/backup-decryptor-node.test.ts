import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { describe, it } from "node:test";
import { PkDecryption, PkEncryption } from "../../crypto/pk/index.ts";
import { nodeBackupDecryptor } from "./backup-decryptor-node.ts";

describe("the Node client's backup decryptor (worker threads)", () => {
  it("decrypts as PkDecryption does, undefined where the key does not fit, each call's answers in order", async (t) => {
    const decryptor = nodeBackupDecryptor();
    // A one-core machine gets none (restore decrypts inline): then there is nothing more to check.
    if (availableParallelism() < 2) {
      assert.equal(decryptor, undefined, "one core: no workers");
      const reason = "SKIPPED: backup decryption workers (one core here)";
      console.log(`\n${"!".repeat(reason.length)}\n${reason}\n${"!".repeat(reason.length)}\n`);
      t.skip(reason);
      return;
    }
    assert.ok(decryptor !== undefined, "two cores or more: restore decrypts on worker threads");
    const key = PkDecryption.create();
    const ours = new PkEncryption(key.publicKey);
    const theirs = new PkEncryption(PkDecryption.create().publicKey);
    const calls = [0, 1, 2].map((c) => {
      const texts = Array.from({ length: 30 }, (_, i) => `{"call":${c},"record":${i}}`);
      const data = texts.map((t, i) => (i % 7 === 3 ? theirs.encrypt(t) : ours.encrypt(t)));
      return { texts, data };
    });
    const privateKey = key.exportPrivateKey();
    const answers = await Promise.all(calls.map(({ data }) => decryptor(privateKey, data)));
    for (const [c, { texts, data }] of calls.entries()) {
      const expected = texts.map((t, i) => (i % 7 === 3 ? undefined : t));
      assert.deepEqual(answers[c], expected);
      // The same as this thread's own decryption.
      assert.equal(answers[c]?.[0], key.decryptString(data[0] as (typeof data)[number]));
    }
    // The caller's key is left as it was (the workers wipe their own copies).
    assert.deepEqual(privateKey, key.exportPrivateKey());
    // A malformed message is refused there as here, a field that is not a string included.
    const good = ours.encrypt("x");
    const notString = { ...good, ciphertext: 5 } as unknown as typeof good;
    assert.deepEqual(await decryptor(privateKey, [notString, good]), [undefined, "x"]);
    assert.deepEqual(await decryptor(privateKey, [{ ephemeral: "x", ciphertext: "y", mac: "z" }]), [
      undefined,
    ]);
  });
});
