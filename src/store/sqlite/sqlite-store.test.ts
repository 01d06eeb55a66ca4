import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCryptoStoreConformance } from "../conformance.ts";
import { SqliteCryptoStore } from "./sqlite-store.ts";

runCryptoStoreConformance({
  name: "sqlite",
  encrypted: true,
  shared: true,
  async createFixture() {
    const directory = mkdtempSync(join(tmpdir(), "keyroom-store-"));
    return {
      // Few KDF iterations keep the suite fast; production stores use STORE_KDF_ITERATIONS.
      open: (o) => SqliteCryptoStore.open({ ...o, directory, kdfIterations: 1000 }),
      cleanup: async () => rmSync(directory, { recursive: true, force: true }),
    };
  },
});
