// What the client syncs with while encryption is configured but not running: nothing. A sync
// handled without the engine would acknowledge its to-device messages, and the room keys in them
// would be gone for good; refusing keeps them on the server until encryption starts.
import type { ToDeviceEvent } from "../../wire/index.ts";
import type { SyncCryptoChanges, SyncProcessor } from "../sync/hooks.ts";
import { ClientCryptoError } from "./errors.ts";

export function refusingSyncProcessor(): SyncProcessor {
  return {
    processSyncChanges(_changes: SyncCryptoChanges): Promise<ToDeviceEvent[]> {
      return Promise.reject(
        new ClientCryptoError(
          "NOT_STARTED",
          "encryption is configured but did not start (see the login or restore error); not syncing, so no room key is lost",
        ),
      );
    },
  };
}
