import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encryptAttachment } from "../../crypto/attachments/index.ts";
import { MemoryCryptoStore } from "../../store/memory/memory-store.ts";
import { emptyChanges, type MachineContext } from "../machine-context.ts";
import {
  BUNDLE_ACCEPT_WINDOW_MS,
  HistorySharingState,
  MAX_ACCEPTED_INVITES,
  MAX_PENDING_BUNDLES,
  type PendingBundle,
} from "./pending.ts";

const { info } = encryptAttachment(new Uint8Array([1, 2, 3]));
const file = { ...info, url: "mxc://x/bundle" };

async function harness() {
  const store = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B" });
  let now = 1_000_000;
  const ctx: MachineContext = { userId: "@bob:x", deviceId: "B", store, now: () => now, tx: emptyChanges() };
  /** One step: a fresh state on the store (as after a restart), saved at the end. */
  const step = async <T>(fn: (s: HistorySharingState) => Promise<T>): Promise<T> => {
    ctx.tx = emptyChanges();
    const result = await fn(new HistorySharingState(ctx));
    await store.saveChanges(ctx.tx);
    return result;
  };
  const advance = (ms: number): void => {
    now += ms;
  };
  return { step, advance, store };
}

const bundle = (roomId: string, sender: string, at = 0): PendingBundle => ({
  roomId,
  sender,
  senderKey: "curve",
  file,
  receivedAt: at,
});

describe("history sharing: remembered bundles and accepted invites", () => {
  it("a bundle is ready only from the inviter of its room, within the window, and survives a restart", async () => {
    const { step, advance } = await harness();
    await step((s) => s.addBundle(bundle("!r:x", "@carol:x")));
    await step((s) => s.addBundle(bundle("!r:x", "@alice:x")));
    await step((s) => s.addBundle(bundle("!other:x", "@alice:x")));
    assert.deepEqual(await step((s) => s.ready()), []); // no invite accepted yet
    await step((s) => s.inviteAccepted("!r:x", "@alice:x"));
    const ready = await step((s) => s.ready());
    assert.deepEqual(
      ready.map((b) => [b.roomId, b.sender]),
      [["!r:x", "@alice:x"]],
    );
    assert.equal(ready[0]?.file.url, "mxc://x/bundle");
    advance(BUNDLE_ACCEPT_WINDOW_MS);
    assert.deepEqual(await step((s) => s.ready()), []); // too late
  });

  it("done forgets a bundle; a newer bundle from the same sender replaces the older; bounded", async () => {
    const { step } = await harness();
    await step((s) => s.inviteAccepted("!r:x", "@alice:x"));
    await step((s) => s.addBundle(bundle("!r:x", "@alice:x", 1)));
    await step((s) => s.addBundle(bundle("!r:x", "@alice:x", 2)));
    assert.deepEqual(
      (await step((s) => s.ready())).map((b) => b.receivedAt),
      [2],
    );
    await step((s) => s.done("!r:x", "@alice:x"));
    assert.deepEqual(await step((s) => s.ready()), []);
    // Anyone may send bundles: at most MAX_PENDING_BUNDLES are kept, the oldest dropped.
    for (let i = 0; i <= MAX_PENDING_BUNDLES; i++) {
      await step((s) => s.addBundle(bundle(`!room${i}:x`, "@mallory:x")));
    }
    await step((s) => s.inviteAccepted("!room0:x", "@mallory:x"));
    assert.deepEqual(await step((s) => s.ready()), []);
    await step((s) => s.inviteAccepted(`!room${MAX_PENDING_BUNDLES}:x`, "@mallory:x"));
    assert.equal((await step((s) => s.ready())).length, 1);
  });

  it(`accepted invites are bounded (MAX_ACCEPTED_INVITES, ${MAX_ACCEPTED_INVITES}), the oldest forgotten first`, async () => {
    // A bot that joins every invite accepts as many as anyone sends it (within its invite limits).
    const { step, store } = await harness();
    for (let i = 0; i <= MAX_ACCEPTED_INVITES; i++) {
      await step((s) => s.inviteAccepted(`!room${i}:x`, "@mallory:x"));
    }
    const saved = (await store.getCustomValue("keyroom.history_sharing.v1")) as { accepted: unknown[] };
    assert.equal(saved.accepted.length, MAX_ACCEPTED_INVITES);
    await step((s) => s.addBundle(bundle("!room0:x", "@mallory:x")));
    await step((s) => s.addBundle(bundle("!room1:x", "@mallory:x")));
    const ready = await step((s) => s.ready());
    assert.deepEqual(
      ready.map((b) => b.roomId),
      ["!room1:x"],
    );
  });
});
