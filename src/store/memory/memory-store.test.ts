import { runCryptoStoreConformance } from "../conformance.ts";
import { MemoryCryptoStore, MemoryStoreData } from "./memory-store.ts";

runCryptoStoreConformance({
  name: "memory",
  encrypted: false,
  async createFixture() {
    const data = new MemoryStoreData();
    return {
      open: ({ userId, deviceId }) => MemoryCryptoStore.open({ userId, deviceId, data }),
      cleanup: async () => {},
    };
  },
});
