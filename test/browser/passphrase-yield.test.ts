// Secret storage's passphrase derivation with progress in Chromium: it yields to the event loop
// between steps through a MessageChannel (browsers have no `setImmediate`), so a page stays live.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { scaledMs } from "../support/budget.ts";
import { type FixturePage, openFixturePage, skipReasonForChromium } from "../support/chromium.ts";

const skip = skipReasonForChromium();
const fixture = new URL("./fixtures/yield-page.ts", import.meta.url).pathname;

interface PageResult {
  readonly error?: string;
  readonly hasSetImmediate: boolean;
  readonly method: string;
  readonly progressReports: number;
  readonly lastProgress: number;
  readonly ticks: number;
  readonly sameKey: boolean;
}

describe("the portable event-loop yield in Chromium", { skip, timeout: scaledMs(60_000) }, () => {
  let fixturePage: FixturePage;

  before(async () => {
    fixturePage = await openFixturePage(fixture);
  });

  after(() => fixturePage?.close());

  it("secret storage's stepped passphrase derivation yields through MessageChannel and gives the one-shot key", async () => {
    const { result: r, errors } = await fixturePage.result<PageResult>("yieldResult", scaledMs(30_000));
    assert.equal(r.error, undefined, `${r.error} ${errors.join("\n")}`);
    assert.equal(r.hasSetImmediate, false, "Chromium has no setImmediate");
    assert.equal(r.method, "MessageChannel");
    assert.ok(r.progressReports > 2, `${r.progressReports} progress reports`);
    assert.equal(r.lastProgress, 1);
    assert.ok(r.ticks > 0, "timers ran between the derivation's steps");
    assert.equal(r.sameKey, true);
    assert.deepEqual(errors, []);
  });
});
