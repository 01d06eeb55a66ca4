// Web Crypto in Chromium gives the JavaScript back end's verdicts: Ed25519 verify on crafted
// signatures (BoringSSL alone accepts some that libsodium refuses; web-ed25519.ts narrows what it
// is asked), and Megolm decryptAsync the results and errors of decrypt.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { scaledMs } from "../support/budget.ts";
import { type FixturePage, openFixturePage, skipReasonForChromium } from "../support/chromium.ts";

const skip = skipReasonForChromium();
const fixture = new URL("./fixtures/web-crypto-page.ts", import.meta.url).pathname;

interface PageResult {
  readonly error?: string;
  readonly backendName: string;
  readonly asyncPrimitivesFaster: boolean;
  readonly webVerifies: number;
  readonly cases: number;
  readonly mismatches: readonly string[];
  readonly megolmChecked: number;
  readonly megolmOutcomes: readonly string[];
  readonly megolmMismatches: readonly number[];
}

describe("Web Crypto primitives in Chromium", { skip, timeout: scaledMs(120_000) }, () => {
  let fixturePage: FixturePage;

  before(async () => {
    fixturePage = await openFixturePage(fixture);
  });

  after(() => fixturePage?.close());

  it("Ed25519 verdicts on crafted signatures and Megolm decryptAsync equal the synchronous forms", async () => {
    const { result: r, errors } = await fixturePage.result<PageResult>("webCryptoResult", scaledMs(60_000));
    assert.equal(r.error, undefined, `${r.error} ${errors.join("\n")}`);
    assert.equal(r.backendName, "noble");
    assert.equal(r.asyncPrimitivesFaster, true);
    assert.deepEqual(r.mismatches, []);
    // The self-test's two, then at least the cases whose keys Web Crypto may judge (the
    // mixed-order and malformed ones go to noble): Chromium's engine was used.
    assert.ok(r.webVerifies >= 2 + 48, `Web Crypto verified ${r.webVerifies} times`);
    assert.ok(r.cases > 100);
    assert.deepEqual(r.megolmMismatches, []);
    assert.ok(r.megolmChecked >= 80);
    assert.ok(
      r.megolmOutcomes.includes("ok") && r.megolmOutcomes.includes("BAD_SIGNATURE"),
      r.megolmOutcomes.join(),
    );
    assert.deepEqual(errors, []);
  });
});
