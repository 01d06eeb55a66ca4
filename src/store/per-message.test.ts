import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { OutboundGroupSessionPickle } from "../crypto/megolm/index.ts";
import { pickle } from "./conformance/samples.ts";
import { sample } from "./conformance.ts";
import { isPerMessage } from "./per-message.ts";

const ROOM = "!room:example.org";
const ratchet = {
  roomId: ROOM,
  sessionId: "o1",
  pickle: pickle<OutboundGroupSessionPickle>("ratchet"),
  messageCount: 5,
};

describe("per-message commits", () => {
  it("only outbound ratchet advances, replay records and a sync token count as per-message changes", () => {
    assert.equal(isPerMessage({ outboundGroupSessionUpdates: [ratchet] }), true);
    const replay = { roomId: ROOM, sessionId: "s", messageIndex: 1, eventId: "$e", timestamp: 0 };
    assert.equal(isPerMessage({ replays: [replay], olmSessions: [] }), true);
    assert.equal(isPerMessage({}), false, "nothing to save is not a per-message save");
    assert.equal(
      isPerMessage({ outboundGroupSessionUpdates: [{ ...ratchet, settledShares: ["r1"] }] }),
      false,
      "a device list change is synced",
    );
    // A sync token whose response changed nothing else: losing it only means syncing that range again.
    assert.equal(isPerMessage({ outboundGroupSessionUpdates: [ratchet], nextBatch: "s1" }), true);
    assert.equal(isPerMessage({ nextBatch: "s1" }), true);
    // The engine's change sets always carry these, empty: they change nothing.
    assert.equal(
      isPerMessage({
        replays: [replay],
        nextBatch: "s1",
        secrets: {},
        customValues: {},
        resetBackedUp: false,
      }),
      true,
    );
    assert.equal(isPerMessage({ nextBatch: "s1", secrets: { key: "v" } }), false);
    assert.equal(isPerMessage({ nextBatch: "s1", secrets: { key: null } }), false, "a deletion is synced");
    assert.equal(isPerMessage({ nextBatch: "s1", customValues: { k: 1 } }), false);
    assert.equal(isPerMessage({ nextBatch: "s1", resetBackedUp: true }), false);
    assert.equal(isPerMessage({ nextBatch: "s1", backupState: null }), false);
    assert.equal(isPerMessage({ nextBatch: "s1", inboundGroupSessions: [sample.inbound(ROOM, "s")] }), false);
    assert.equal(isPerMessage({ replays: [replay], account: sample.account(0) }), false);
    assert.equal(isPerMessage({ outboundGroupSessions: [sample.outbound(ROOM, "o1")] }), false);
  });
});
