// Node's work contexts (one per client's sync loop) share one AsyncLocalStorage: each context is a
// token in the list of works the running code belongs to. They stay independent of each other:
// nested, exited one at a time, and followed through awaits.
import assert from "node:assert/strict";
import { it } from "node:test";
import { platform } from "./node.ts";

it("work contexts are independent: nested, exited one at a time, followed through awaits", async () => {
  const a = platform.workContext();
  const b = platform.workContext();
  assert.equal(a.active || b.active, false);
  await a.run(async () => {
    await Promise.resolve();
    assert.deepEqual([a.active, b.active], [true, false]);
    await b.run(async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.deepEqual([a.active, b.active], [true, true]);
      a.exit(() => assert.deepEqual([a.active, b.active], [false, true]));
      assert.deepEqual([a.active, b.active], [true, true]);
    });
    assert.deepEqual([a.active, b.active], [true, false]);
    // Work started inside and left running is still the work.
    await new Promise<void>((resolve) => setTimeout(() => resolve(assert.equal(a.active, true)), 0));
  });
  assert.equal(a.active || b.active, false);
});
