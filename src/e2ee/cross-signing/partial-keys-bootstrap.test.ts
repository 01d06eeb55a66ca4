// A device that holds our published master key but not the self-signing or user-signing key (it
// got only the master key from another device or from secret storage) and bootstraps without
// `reset` must not replace the identity: it is refused (IDENTITY_EXISTS), and the master key
// others pinned and verified stays.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { CrossSigningError } from "./errors.ts";

const ALICE = "@alice:example.org";

describe("bootstrap on a device holding only some of our private keys", () => {
  for (const held of [["master"], ["master", "selfSigning"], ["master", "userSigning"]] as const) {
    it(`holding ${held.join(" + ")}: the published master key is kept`, async () => {
      const hs = new FakeHomeserver();
      const first = await TestClient.create(hs, { userId: ALICE, deviceId: "FIRST" });
      await first.bootstrapCrossSigning();
      const published = (await first.machine.crossSigningStatus()).masterKey;
      assert.ok(published);
      const exported = await first.machine.exportCrossSigningKeys();
      const second = await TestClient.create(hs, { userId: ALICE, deviceId: "SECOND" });
      await second.machine.receiveKeysChanges([ALICE], []);
      await second.flush();
      await second.machine.importCrossSigningKeys(Object.fromEntries(held.map((k) => [k, exported[k]])));
      await assert.rejects(
        second.bootstrapCrossSigning(),
        (e: unknown) => e instanceof CrossSigningError && e.code === "IDENTITY_EXISTS",
      );
      await first.machine.receiveKeysChanges([ALICE], []);
      await first.flush();
      assert.equal((await first.machine.crossSigningStatus()).masterKey, published);
      assert.equal((await second.machine.crossSigningStatus()).masterKey, published);
    });
  }
});
