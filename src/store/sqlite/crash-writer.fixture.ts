// Child process for the crash tests: saves numbered steps forever, each step one saveChanges that
// bumps the account, adds SESSIONS_PER_STEP inbound sessions and moves the sync token. The parent
// kills it at random moments and checks the three always agree.
import type { InboundGroupSessionPickle } from "../../crypto/megolm/index.ts";
import type { AccountPickle } from "../../crypto/olm/index.ts";
import { SqliteCryptoStore } from "./sqlite-store.ts";

/** A stand-in pickle carrying the step number (the store keeps pickles opaque). */
const stepPickle = <T>(step: number): T => ({ version: 1, step }) as unknown as T;

const SESSIONS_PER_STEP = 50;

const directory = process.argv[2];
if (directory === undefined) throw new Error("usage: crash-writer.fixture.ts <directory>");
const store = await SqliteCryptoStore.open({
  userId: "@alice:example.org",
  deviceId: "ALICEDEVICE",
  directory,
});
let step = Number((await store.getNextBatch())?.slice(1) ?? "0");
for (let first = true; ; first = false) {
  step++;
  const sessions = [];
  for (let i = 0; i < SESSIONS_PER_STEP; i++) {
    sessions.push({
      roomId: "!crash:example.org",
      sessionId: `s${step}-${i}`,
      senderKey: "curve",
      senderClaimedEd25519: "ed",
      firstKnownIndex: 0,
      pickle: stepPickle<InboundGroupSessionPickle>(step),
      imported: false,
      forwarded: false,
      forwardingChain: [],
      backedUp: false,
    });
  }
  await store.saveChanges({
    account: { pickle: stepPickle<AccountPickle>(step), deviceKeysUploaded: true },
    inboundGroupSessions: sessions,
    nextBatch: `t${step}`,
  });
  // The parent starts its random countdown once this run has committed a step.
  if (first) process.stdout.write("ready\n");
}
