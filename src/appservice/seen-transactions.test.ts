import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_REMEMBERED_TXNS, SeenTransactions } from "./seen-transactions.ts";

describe("SeenTransactions", () => {
  it("handles a transaction once; a duplicate is acknowledged without handling", async () => {
    const seen = new SeenTransactions();
    let runs = 0;
    assert.equal(await seen.once("1", async () => void runs++), true);
    assert.equal(await seen.once("1", async () => void runs++), false);
    assert.equal(runs, 1);
  });

  it("a retry that arrives while the first run goes waits for it and does not run again", async () => {
    const seen = new SeenTransactions();
    let release: () => void = () => {};
    let runs = 0;
    const first = seen.once("7", async () => {
      runs++;
      await new Promise<void>((r) => {
        release = r;
      });
    });
    let retryDone = false;
    const retry = seen
      .once("7", async () => void runs++)
      .then((ran) => {
        retryDone = true;
        return ran;
      });
    await Promise.resolve();
    assert.equal(retryDone, false);
    release();
    assert.equal(await first, true);
    assert.equal(await retry, false);
    assert.equal(runs, 1);
  });

  it("forgets a run that failed, so the homeserver's retry runs again", async () => {
    const seen = new SeenTransactions();
    await assert.rejects(
      seen.once("2", async () => Promise.reject(new Error("store down"))),
      /store down/,
    );
    assert.equal(seen.has("2"), false);
    assert.equal(await seen.once("2", async () => {}), true);
  });

  it("remembers at most its bound, dropping the oldest", async () => {
    const seen = new SeenTransactions(3);
    for (const id of ["a", "b", "c", "d"]) await seen.once(id, async () => {});
    assert.equal(seen.size, 3);
    assert.equal(seen.has("a"), false);
    assert.equal(seen.has("d"), true);
    assert.ok(MAX_REMEMBERED_TXNS >= 100);
  });
});
