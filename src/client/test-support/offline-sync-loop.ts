// A sync loop with no network (its responses are fed to it: `SyncLoop.feed`), no processor and a
// clock that never waits: how a test or bench drives the client's sync handling and its store.

import type { ClientStore } from "../client-store/store.ts";
import { TypedEmitter } from "../events/emitter.ts";
import type { ClientEventMap } from "../events/types.ts";
import { HttpClient } from "../http.ts";
import { silentLogger } from "../logger.ts";
import { SyncLoop } from "../sync/loop.ts";
import { SyncedState } from "../sync/state.ts";

export function offlineSyncLoop(
  store: ClientStore,
  userId: string,
  synced = new SyncedState(),
  emitter = new TypedEmitter<ClientEventMap>(),
): SyncLoop {
  return new SyncLoop({
    http: new HttpClient({ baseUrl: "https://hs", fetch: () => Promise.reject(new Error("no network")) }),
    clock: { now: () => 0, random: () => 0.5, sleep: async () => undefined },
    since: undefined,
    context: { userId, synced, emitter, store, logger: silentLogger, processor: () => undefined },
    onSessionRevoked: async () => undefined,
  });
}
