// Anyone can send room keys to our dehydrated device (its keys are public), under any user ID the
// server lets them use. Taking what it received made us track each sender we did not know as if
// we shared a room with them: stored and queried for good, without the bound that holds users
// tracked only because they sent us to-device messages (MAX_TRACKED_SENDERS).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { Account } from "../../crypto/olm/index.ts";
import { MemoryCryptoStore } from "../../store/memory/memory-store.ts";
import { MEGOLM_ALGORITHM } from "../devices/device.ts";
import { MAX_TRACKED_SENDERS } from "../devices/manager.ts";
import { OlmMachine } from "../machine.ts";
import type { RehydratedRoomKey } from "./rehydrate.ts";

const BOB = "@bob:x";

describe("room keys a rehydrated device received from many unknown senders", () => {
  it(`are imported; their senders are tracked within MAX_TRACKED_SENDERS (${MAX_TRACKED_SENDERS})`, async () => {
    const store = await MemoryCryptoStore.open({ userId: BOB, deviceId: "NEW" });
    const machine = await OlmMachine.open({ userId: BOB, deviceId: "NEW", store });
    const sender = Account.create().identityKeys;
    const count = MAX_TRACKED_SENDERS + 50;
    const keys: RehydratedRoomKey[] = Array.from({ length: count }, (_, i) => {
      const megolm = OutboundGroupSession.create();
      return {
        sender: `@spam${i}:evil`,
        senderKey: sender.curve25519,
        senderClaimedEd25519: sender.ed25519,
        content: {
          algorithm: MEGOLM_ALGORITHM,
          room_id: "!room:x",
          session_id: megolm.sessionId,
          session_key: megolm.sessionKey(),
        },
      };
    });
    const { imported } = await machine.dehydration.importRoomKeys(keys);
    assert.equal(imported, count);
    const tracked = new Set((await store.getTrackedUsers()).map((u) => u.userId));
    assert.ok(tracked.has(`@spam${count - 1}:evil`), "the latest sender is tracked");
    assert.ok(!tracked.has("@spam0:evil"), "the first sender was given up");
    assert.ok(tracked.size <= MAX_TRACKED_SENDERS + 1, `${tracked.size} users tracked`);
    await machine.close();
  });
});
