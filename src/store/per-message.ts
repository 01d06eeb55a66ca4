// Which commits hold only what one message costs: the back ends write those without waiting for
// the disk (SQLite `synchronous = NORMAL`, IndexedDB `relaxed`), every other commit waits for it
// (docs/stores.md, "Durability").
import type { CryptoChanges } from "./changes.ts";
import { onlyRatchet } from "./validate.ts";

/**
 * True when `changes` holds only what one message costs (outbound ratchet advances that change no
 * device list, replay records) and, at most, the sync token: such a commit need not wait for the
 * disk. A sync token alone may be lost by a power loss: the next start then syncs again from an
 * earlier token, and the lost commits brought nothing else into the store (every commit that did
 * was synced, and its sync covered every commit before it). Empty parts (the engine's change sets
 * always carry `secrets: {}`) change nothing and do not count.
 */
export function isPerMessage(changes: CryptoChanges): boolean {
  let any = false;
  // A for-in over the keys a step sets: this runs once per message.
  for (const key in changes) {
    const value = changes[key as keyof CryptoChanges];
    if (value === undefined) continue;
    if (key === "replays" || key === "nextBatch") {
      any = true;
    } else if (key === "outboundGroupSessionUpdates") {
      for (const u of value as NonNullable<CryptoChanges["outboundGroupSessionUpdates"]>) {
        if (!onlyRatchet(u)) return false;
      }
      any = true;
    } else if (key === "secrets" || key === "customValues") {
      if (Object.keys(value as object).length > 0) return false;
    } else if (key === "resetBackedUp") {
      if (value === true) return false;
    } else if (!(Array.isArray(value) && value.length === 0)) {
      return false;
    }
  }
  return any;
}
