// Anyone may send us bundles, and at most MAX_PENDING_BUNDLES are remembered. A bundle from the
// inviter of a room we joined (ready, waiting for the inviter's device list or for the app's word
// on a changed identity) is not pushed out by others' bundles: those go first, oldest first.
import assert from "node:assert/strict";
import { it } from "node:test";
import { encryptAttachment } from "../../crypto/attachments/index.ts";
import { MemoryCryptoStore } from "../../store/memory/memory-store.ts";
import { emptyChanges, type MachineContext } from "../machine-context.ts";
import { HistorySharingState, MAX_PENDING_BUNDLES, type PendingBundle } from "./pending.ts";

const { info } = encryptAttachment(new Uint8Array([1, 2, 3]));
const file = { ...info, url: "mxc://x/bundle" };

const bundle = (roomId: string, sender: string): PendingBundle => ({
  roomId,
  sender,
  senderKey: "curve",
  file,
  receivedAt: 0,
});

it("a ready bundle outlives a flood of others' bundles; the oldest of those go first", async () => {
  const store = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B" });
  const ctx: MachineContext = {
    userId: "@bob:x",
    deviceId: "B",
    store,
    now: () => 1_000_000,
    tx: emptyChanges(),
  };
  const step = async <T>(fn: (s: HistorySharingState) => Promise<T>): Promise<T> => {
    ctx.tx = emptyChanges();
    const result = await fn(new HistorySharingState(ctx));
    await store.saveChanges(ctx.tx);
    return result;
  };
  await step((s) => s.addBundle(bundle("!early:x", "@carol:x")));
  await step((s) => s.inviteAccepted("!r:x", "@alice:x"));
  await step((s) => s.addBundle(bundle("!r:x", "@alice:x")));
  for (let i = 0; i < MAX_PENDING_BUNDLES; i++) {
    await step((s) => s.addBundle(bundle(`!spam${i}:x`, "@mallory:x")));
  }
  assert.deepEqual(
    (await step((s) => s.ready())).map((b) => [b.roomId, b.sender]),
    [["!r:x", "@alice:x"]],
  );
  const saved = (await store.getCustomValue("keyroom.history_sharing.v1")) as unknown as {
    bundles: PendingBundle[];
  };
  assert.equal(saved.bundles.length, MAX_PENDING_BUNDLES, "still bounded");
  // Carol's, then the first of Mallory's, went first.
  assert.equal(
    saved.bundles.some((b) => b.roomId === "!early:x" || b.roomId === "!spam0:x"),
    false,
  );
  assert.equal(
    saved.bundles.some((b) => b.roomId === "!spam1:x"),
    true,
  );
});
