// The IndexedDB client store in Chromium, where one value may not pass about 127 MiB (fake-indexeddb
// has no limit): a sync response whose room snapshot is larger (a room's creator can grow its state
// that far) fails saying why, saves nothing of the response, and leaves no request rejecting
// unhandled in the page. Before the fix, Chromium aborted the transaction at that room, the token's
// request then threw "InvalidStateError", and the other rooms' requests rejected unhandled.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { scaledMs } from "../support/budget.ts";
import { type FixturePage, openFixturePage, skipReasonForChromium } from "../support/chromium.ts";

const skip = skipReasonForChromium();
const fixture = new URL("./fixtures/idb-client-store-page.ts", import.meta.url).pathname;

interface PageResult {
  readonly error?: string;
  readonly nextBatch?: string;
  readonly rooms?: readonly string[];
}

describe("the IndexedDB client store in Chromium", { skip, timeout: scaledMs(120_000) }, () => {
  let fixturePage: FixturePage;

  before(async () => {
    fixturePage = await openFixturePage(fixture);
  });

  after(() => fixturePage?.close());

  it("a room snapshot past Chromium's value size limit: a failure saying so, nothing saved, nothing unhandled", async () => {
    const { result: r, errors } = await fixturePage.result<PageResult>(
      "idbClientStoreResult",
      scaledMs(60_000),
    );
    assert.equal(r.error, "UnknownError (too large)", errors.join("\n"));
    assert.equal(r.nextBatch, "s1");
    assert.deepEqual(r.rooms, ["!a:hs"]);
    assert.deepEqual(errors, []);
  });
});
