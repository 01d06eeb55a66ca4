/**
 * Opening a store: the recorded identity, one handle at a time or the shared lease, use after
 * close, reopening, and the passphrase of encrypting targets.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StoreError, StoreKeyError, StoreLockedError, StoreMismatchError } from "../errors.ts";
import { ALICE, BOB, checkFull, DEVICE, fullChanges } from "./samples.ts";
import type { ConformanceSuite } from "./target.ts";

export function openingTests({ target }: ConformanceSuite): void {
  describe("identity", () => {
    it("refuses to create a store without a device ID", async () => {
      const fixture = await target.createFixture();
      try {
        await assert.rejects(
          fixture.open({ userId: ALICE }),
          (e) => e instanceof StoreError && e.code === "IDENTITY_REQUIRED",
        );
      } finally {
        await fixture.cleanup();
      }
    });

    it("records the identity, restores the device ID and refuses another user or device", async () => {
      const fixture = await target.createFixture();
      try {
        const first = await fixture.open({ userId: ALICE, deviceId: DEVICE });
        assert.deepEqual(await first.loadIdentity(), { userId: ALICE, deviceId: DEVICE });
        await first.close();
        const restored = await fixture.open({ userId: ALICE });
        assert.deepEqual(await restored.loadIdentity(), { userId: ALICE, deviceId: DEVICE });
        await restored.close();
        await assert.rejects(fixture.open({ userId: BOB, deviceId: DEVICE }), (e) => {
          assert.ok(e instanceof StoreMismatchError);
          assert.equal(e.code, "USER_MISMATCH");
          assert.match(e.message, /@alice:example\.org/);
          assert.match(e.message, /@bob:example\.org/);
          return true;
        });
        await assert.rejects(fixture.open({ userId: ALICE, deviceId: "OTHER" }), (e) => {
          assert.ok(e instanceof StoreMismatchError);
          assert.equal(e.code, "DEVICE_MISMATCH");
          assert.deepEqual(e.stored, { userId: ALICE, deviceId: DEVICE });
          assert.match(e.message, /ALICEDEVICE/);
          return true;
        });
        // The failed opens left the store usable.
        const again = await fixture.open({ userId: ALICE, deviceId: DEVICE });
        await again.close();
      } finally {
        await fixture.cleanup();
      }
    });
  });

  if (target.shared === true) {
    it("shares the location between handles through the lease, refusing stale writes", async () => {
      const fixture = await target.createFixture();
      try {
        const a = await fixture.open({ userId: ALICE, deviceId: DEVICE });
        const b = await fixture.open({ userId: ALICE, deviceId: DEVICE });
        try {
          assert.deepEqual(await a.tryAcquireLease(60_000), { stale: false });
          assert.equal(await b.tryAcquireLease(60_000), undefined, "held by a");
          assert.equal(await a.renewLease(60_000), true);
          await a.saveChanges({ nextBatch: "s1" });
          await a.releaseLease();
          // b takes it after a wrote: b's memory is stale, and says so once.
          assert.deepEqual(await b.tryAcquireLease(60_000), { stale: true });
          assert.equal(await b.getNextBatch(), "s1");
          await b.saveChanges({ nextBatch: "s2" });
          assert.equal(await a.tryAcquireLease(60_000), undefined, "held by b");
          // a, not holding it and behind b, may not write.
          await assert.rejects(a.saveChanges({ nextBatch: "old" }), (e) => {
            assert.ok(e instanceof StoreLockedError);
            assert.equal(e.code, "STALE");
            return true;
          });
          assert.equal(await a.renewLease(60_000), false);
          await b.releaseLease();
          assert.deepEqual(await b.tryAcquireLease(60_000), { stale: false }, "nobody came in between");
          await b.releaseLease();
          // A save outside the lease takes the store for one transaction: the others reload.
          await b.saveChanges({ nextBatch: "s3" });
          assert.deepEqual(await a.tryAcquireLease(60_000), { stale: true });
          assert.equal(await a.getNextBatch(), "s3");
          await a.saveChanges({ nextBatch: "s4" });
          await a.releaseLease();
          await assert.rejects(b.saveChanges({ nextBatch: "old" }), StoreLockedError);
          assert.equal(await b.getNextBatch(), "s4", "the refused write saved nothing");
        } finally {
          await a.close();
          await b.close();
        }
        // Closing released it.
        const c = await fixture.open({ userId: ALICE, deviceId: DEVICE });
        assert.notEqual(await c.tryAcquireLease(60_000), undefined);
        await c.close();
      } finally {
        await fixture.cleanup();
      }
    });
  } else {
    it("allows one open handle at a time and releases the lock on close", async () => {
      const fixture = await target.createFixture();
      try {
        const first = await fixture.open({ userId: ALICE, deviceId: DEVICE });
        assert.deepEqual(await first.tryAcquireLease(60_000), { stale: false }, "one handle: never stale");
        await assert.rejects(fixture.open({ userId: ALICE, deviceId: DEVICE }), (e) => {
          assert.ok(e instanceof StoreLockedError);
          assert.equal(e.code, "LOCKED");
          return true;
        });
        await first.close();
        const second = await fixture.open({ userId: ALICE, deviceId: DEVICE });
        await second.close();
      } finally {
        await fixture.cleanup();
      }
    });
  }

  it("refuses use after close", async () => {
    const fixture = await target.createFixture();
    const store = await fixture.open({ userId: ALICE, deviceId: DEVICE });
    await store.close();
    await store.close(); // idempotent
    await assert.rejects(store.getNextBatch(), (e) => e instanceof StoreError && e.code === "CLOSED");
    await assert.rejects(store.saveChanges({}), (e) => e instanceof StoreError && e.code === "CLOSED");
    await fixture.cleanup();
  });

  it("keeps everything across a reopen", async () => {
    const fixture = await target.createFixture();
    try {
      const opts = { userId: ALICE, deviceId: DEVICE, passphrase: "correct horse" };
      const first = await fixture.open(opts);
      await first.saveChanges(fullChanges());
      await first.close();
      const second = await fixture.open(opts);
      await checkFull(second);
      await second.close();
    } finally {
      await fixture.cleanup();
    }
  });

  if (target.encrypted) {
    it("refuses a wrong passphrase or a missing one", async () => {
      const fixture = await target.createFixture();
      try {
        const store = await fixture.open({ userId: ALICE, deviceId: DEVICE, passphrase: "hunter2-Right" });
        await store.saveChanges({ secrets: { s: "v" } });
        await store.close();
        await assert.rejects(fixture.open({ userId: ALICE, passphrase: "guess-9Qz" }), (e) => {
          assert.ok(e instanceof StoreKeyError);
          assert.equal(e.code, "WRONG_KEY");
          assert.doesNotMatch(e.message, /hunter2|guess-9Qz/);
          return true;
        });
        await assert.rejects(
          fixture.open({ userId: ALICE }),
          (e) => e instanceof StoreKeyError && e.code === "KEY_KIND_MISMATCH",
        );
        const again = await fixture.open({ userId: ALICE, passphrase: "hunter2-Right" });
        assert.equal(await again.getSecret("s"), "v");
        await again.close();
      } finally {
        await fixture.cleanup();
      }
    });
  }
}
