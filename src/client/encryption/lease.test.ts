import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StoreLockedError } from "../../store/errors.ts";
import type { LeaseGrant, StoreLease } from "../../store/store.ts";
import type { Clock } from "../clock.ts";
import { LeaseKeeper, MAX_LEASE_HOLD_MS } from "./lease.ts";

/** A store lease held elsewhere for `busyFor` attempts, then granted (stale when `stale`). */
class FakeLease implements StoreLease {
  attempts = 0;
  releases = 0;
  held = false;
  constructor(
    public busyFor = 0,
    public stale = false,
  ) {}
  async tryAcquireLease(): Promise<LeaseGrant | undefined> {
    this.attempts++;
    if (this.attempts <= this.busyFor) return undefined;
    assert.equal(this.held, false, "taken twice without a release");
    this.held = true;
    const stale = this.stale;
    this.stale = false;
    return { stale };
  }
  async renewLease(): Promise<boolean> {
    return this.held;
  }
  async releaseLease(): Promise<void> {
    this.held = false;
    this.releases++;
  }
  onChangedElsewhere(): () => void {
    return () => {};
  }
}

/** Time moves only when the keeper sleeps. */
function fakeClock(): Clock & { slept: number[]; advance(ms: number): void } {
  let now = 0;
  const slept: number[] = [];
  return {
    slept,
    advance: (ms) => {
      now += ms;
    },
    now: () => now,
    random: () => 0.5,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  };
}

describe("LeaseKeeper", () => {
  it("holds the lease once for nested and overlapping units, and releases it after the last", async () => {
    const store = new FakeLease();
    const keeper = new LeaseKeeper(store, fakeClock(), "test", { lingerMs: 0 });
    let inner = false;
    await Promise.all([
      keeper.run(async () => {
        await keeper.run(async () => {
          inner = store.held;
        });
      }),
      keeper.run(async () => assert.equal(store.held, true)),
    ]);
    assert.equal(inner, true);
    assert.equal(store.attempts, 1);
    assert.equal(store.releases, 1);
    assert.equal(store.held, false);
    // A unit that throws still lets go.
    await assert.rejects(
      keeper.run(async () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(store.held, false);
  });

  it("waits while another process holds it, backing off, and reloads when it was stale", async () => {
    const store = new FakeLease(6, true);
    const clock = fakeClock();
    const keeper = new LeaseKeeper(store, clock, "test", { timeoutMs: 60_000, lingerMs: 0 });
    let reloaded = 0;
    keeper.onStale = async () => {
      assert.equal(store.held, true, "reloads under the lease");
      reloaded++;
    };
    assert.equal(await keeper.run(async () => "done"), "done");
    assert.equal(store.attempts, 7);
    assert.deepEqual(clock.slept, [5, 10, 20, 40, 80, 100]);
    assert.equal(reloaded, 1);
    assert.equal(keeper.reloads, 1);
    await keeper.run(async () => undefined);
    assert.equal(reloaded, 1, "not stale the second time");
  });

  it("gives up with StoreLockedError(LEASE_TIMEOUT) after timeoutMs of waiting", async () => {
    const store = new FakeLease(Number.POSITIVE_INFINITY);
    const keeper = new LeaseKeeper(store, fakeClock(), "@bob:x/B", { timeoutMs: 1_000 });
    let ran = false;
    await assert.rejects(
      keeper.run(async () => {
        ran = true;
      }),
      (e) => {
        assert.ok(e instanceof StoreLockedError);
        assert.equal(e.code, "LEASE_TIMEOUT");
        assert.match(e.message, /@bob:x\/B/);
        return true;
      },
    );
    assert.equal(ran, false);
    // The next unit tries again from scratch.
    store.busyFor = store.attempts;
    await keeper.run(async () => undefined);
    assert.equal(store.releases >= 1, true);
  });

  it("keeps the lease between units that follow each other, and lets it go after the linger", async () => {
    const store = new FakeLease();
    const keeper = new LeaseKeeper(store, fakeClock(), "test", { lingerMs: 1 });
    for (let i = 0; i < 5; i++) await keeper.run(async () => assert.equal(store.held, true));
    assert.equal(store.attempts, 1, "taken once for five units in a row");
    assert.equal(store.releases, 0);
    // The linger ends (a real timer; no unit starts meanwhile).
    while (store.held) await new Promise((r) => setTimeout(r, 1));
    assert.equal(store.releases, 1);
    await keeper.run(async () => assert.equal(store.held, true));
    assert.equal(store.attempts, 2, "taken again after it was let go");
  });

  it("lets go without lingering once held MAX_LEASE_HOLD_MS in a row, or when taking it failed", async () => {
    const store = new FakeLease();
    const clock = fakeClock();
    const keeper = new LeaseKeeper(store, clock, "test", { lingerMs: 60_000 });
    await keeper.run(async () => undefined);
    assert.equal(store.held, true, "lingering");
    await keeper.run(async () => clock.advance(MAX_LEASE_HOLD_MS));
    assert.equal(store.held, false, "released at the end of the unit that reached the bound");
    assert.equal(store.releases, 1);
    // A reload that fails after taking it: released, and the next unit takes it afresh.
    store.stale = true;
    keeper.onStale = async () => {
      throw new Error("reload failed");
    };
    await assert.rejects(
      keeper.run(async () => undefined),
      /reload failed/,
    );
    assert.equal(store.held, false);
    keeper.onStale = async () => {};
    await keeper.run(async () => undefined);
    assert.equal(store.attempts, 3);
  });

  it("refuses a non-positive duration or a negative timeout", () => {
    assert.throws(() => new LeaseKeeper(new FakeLease(), fakeClock(), "x", { durationMs: 0 }), RangeError);
    assert.throws(() => new LeaseKeeper(new FakeLease(), fakeClock(), "x", { timeoutMs: -1 }), RangeError);
    assert.throws(() => new LeaseKeeper(new FakeLease(), fakeClock(), "x", { lingerMs: -1 }), RangeError);
  });
});
