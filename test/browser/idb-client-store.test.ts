// The IndexedDB client store in Chromium, where one value may not pass about 127 MiB (fake-indexeddb
// has no limit): a room whose state a member grew past that (140 MiB of state events) is saved with
// the sync response that brought it, and reads back whole, each event in its place, and the sync
// position moves. Before each state event was its own record (the room's snapshot one value),
// Chromium refused the room ("UnknownError", value too large), nothing of the response was saved,
// and every later save failed the same way: the position never moved again.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { scaledMs } from "../support/budget.ts";
import { type FixturePage, openFixturePage, skipReasonForChromium } from "../support/chromium.ts";
import {
  type ForgottenRoomsResult,
  GONE_STATE_EVENTS,
  KEEP_STATE_EVENTS,
} from "./fixtures/forgotten-rooms.ts";

const skip = skipReasonForChromium();
const fixture = new URL("./fixtures/idb-client-store-page.ts", import.meta.url).pathname;

interface PageResult {
  readonly error?: string;
  readonly nextBatch?: string;
  readonly rooms?: readonly string[];
  readonly bigEvents?: number;
  readonly bigStateMiB?: number;
  readonly inPlace?: boolean;
  readonly forgotten?: Partial<ForgottenRoomsResult> & { readonly error?: string };
}

describe("the IndexedDB client store in Chromium", { skip, timeout: scaledMs(120_000) }, () => {
  let fixturePage: FixturePage;
  // One page load runs both parts (one browser, one bundle): each test reads its part.
  let r: PageResult;
  let errors: string[];

  before(async () => {
    fixturePage = await openFixturePage(fixture);
    ({ result: r, errors } = await fixturePage.result<PageResult>("idbClientStoreResult", scaledMs(60_000)));
  });

  after(() => fixturePage?.close());

  it("a room with 140 MiB of state (past Chromium's value size limit): saved with its response, read back whole", () => {
    assert.equal(r.error, undefined, errors.join("\n"));
    assert.equal(r.nextBatch, "s2");
    assert.deepEqual(r.rooms, ["!a:hs", "!b:hs", "!big:hs"]);
    assert.equal(r.bigEvents, Math.ceil((140 * 1024) / 60));
    assert.ok((r.bigStateMiB ?? 0) >= 139, `${r.bigStateMiB} MiB read back`);
    assert.equal(r.inPlace, true);
    assert.deepEqual(errors, []);
  });

  it("a room left and forgotten: gone with every room_state record after reopening, the other whole; joined again, new state only", () => {
    const f = r.forgotten ?? {};
    assert.equal(f.error, undefined, errors.join("\n"));
    for (const call of ["leave", "forget"]) {
      assert.ok(f.requests?.includes(`POST /_matrix/client/v3/rooms/!gone%3Ahs/${call}`), String(f.requests));
    }
    assert.deepEqual(f.forgottenEvents, ["!gone:hs"]);
    assert.deepEqual(f.roomsAfterForget, ["!keep:hs"]);
    assert.equal(f.goneRecordsBeforeForget, GONE_STATE_EVENTS + 1);
    assert.equal(f.goneRecordsAfterForget, 0);
    assert.equal(f.keepRecordsAfterForget, KEEP_STATE_EVENTS + 1);
    assert.deepEqual(f.roomsReopened, ["!keep:hs"]);
    assert.equal(f.keepStateReopened, KEEP_STATE_EVENTS);
    assert.equal(f.nextBatchReopened, "s2");
    assert.deepEqual(f.goneStateRejoined, [
      "m.room.member @me:hs",
      "org.example.thing new0",
      "org.example.thing new1",
    ]);
    assert.equal(f.goneRecordsRejoined, 3);
    assert.deepEqual(errors, []);
  });
});
