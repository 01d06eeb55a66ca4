// The examples in README and docs/ are programs; this runs them so they cannot rot.
import assert from "node:assert/strict";
import { test } from "node:test";
import { run as cryptoBasics } from "./crypto-basics.ts";

test("examples/crypto-basics: Olm and Megolm round trips", () => {
  assert.deepEqual(cryptoBasics(), ["hello", "to everyone #0"]);
});
