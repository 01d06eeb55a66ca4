import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { MemoryCryptoStore } from "../../store/memory/memory-store.ts";
import { HeldKeyRequests } from "../key-requests/held.ts";
import { emptyChanges, type MachineContext } from "../machine-context.ts";
import { buildParts } from "../machine-parts.ts";
import { MachineSteps } from "../machine-steps.ts";
import { importRoomKey } from "../room-keys/import.ts";
import { newSecretGossipState } from "../secret-storage/gossip.ts";
import { megolmEventIn } from "../test-support/fake-homeserver.ts";
import { exportsOf } from "../test-support/room-key-exports.ts";
import { OwnEchoes } from "./own-echoes.ts";
import { ReplayGuard } from "./replay.ts";

describe("replays of a session an import brought in", () => {
  it("an event decrypted in the import's own step still owns its index once memory dropped the session's records", async () => {
    const store = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B" });
    const ctx: MachineContext = { userId: "@bob:x", deviceId: "B", store, now: Date.now, tx: emptyChanges() };
    // Room for one session's state and one record: any other session pushes it out of memory.
    const replays = new ReplayGuard(2);
    const kept = {
      replays,
      ownEchoes: new OwnEchoes(),
      heldKeyRequests: new HeldKeyRequests(),
      signatureUploads: new Map(),
      secretGossip: newSecretGossipState(),
      settingsDefaults: {
        verifyDevices: false,
        onlyVerifiedDevices: false,
        shareWith: "all" as const,
        errorOnVerifiedUserProblems: false,
      },
    };
    const steps = new MachineSteps(ctx, await buildParts(ctx, kept), kept, {
      removed: () => undefined,
      dropUpload: () => undefined,
    });
    const s = OutboundGroupSession.create();
    const exported = exportsOf(s)();
    const first = megolmEventIn(s, "!r:x", "@alice:x", "A", "first");
    // The import's step decrypts an event that waited for the key (as importRoomKeys retries them).
    const one = await steps.run(async (p) => {
      assert.ok(await importRoomKey(p.inbound, exported));
      return p.decryptor.decrypt(first, "!r:x");
    });
    assert.equal(one.ok && one.event.content.body, "first");
    // Other sessions' states push this one's out of memory (its record is in the store).
    replays.session("!other:x", "other");
    const replayed = { ...first, event_id: "$replayed" };
    const two = await steps.run((p) => p.decryptor.decrypt(replayed, "!r:x"));
    assert.equal(!two.ok && two.error.code, "REPLAYED");
  });
});
