// The SQLite store's bulk reads of inbound sessions over rows that fail authentication (see
// `damagedInboundRowsTests`).
import { describe } from "node:test";
import { DAMAGEABLE_BACK_ENDS } from "../test-support/damageable.ts";
import { damagedInboundRowsTests } from "../test-support/damaged-inbound-rows.ts";

describe("SqliteCryptoStore: damaged inbound session rows", () => {
  const backEnd = DAMAGEABLE_BACK_ENDS.find((b) => b.name === "SQLite");
  if (backEnd === undefined) throw new Error("no SQLite back end");
  damagedInboundRowsTests(backEnd.make);
});
