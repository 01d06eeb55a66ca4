// The client's import passes of history-sharing bundles (MSC4268), over a stub engine: one pass at
// a time however many callers ask (joinRoom and the sync both saw the join), a failing engine step
// in a background pass is reported and left for the next try instead of rejecting, and `close`
// does not wait for a download under way (the bundle stays in the crypto store for the next start).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { encryptAttachment } from "../../crypto/attachments/attachment.ts";
import type { OlmMachine, PendingBundle } from "../../e2ee/index.ts";
import { ClientCryptoError } from "./errors.ts";
import { HistorySharing, type HistorySharingHost } from "./history-sharing.ts";

const ROOM = "!room:hs";
const ALICE = "@alice:hs";

function harness(opts: { bundlesToImport?: () => Promise<PendingBundle[]> } = {}) {
  const { ciphertext, info } = encryptAttachment(new TextEncoder().encode("{}"));
  const bundle: PendingBundle = {
    roomId: ROOM,
    sender: ALICE,
    senderKey: "curve",
    file: { ...info, url: "mxc://hs/bundle" },
    receivedAt: 0,
  };
  const state = {
    pending: [bundle],
    imported: 0,
    downloads: 0,
    reported: [] as unknown[],
    /** Each download waits for this when set. */
    gate: undefined as Promise<void> | undefined,
    unitsRunning: 0,
    /** Called in each download, after it is counted (may throw). */
    onDownload: undefined as (() => void) | undefined,
    /** The bytes each download returned (a copy each time), held weakly. */
    downloaded: [] as WeakRef<Uint8Array>[],
  };
  let started = () => {};
  const downloading = new Promise<void>((resolve) => {
    started = resolve;
  });
  const machine = {
    historySharing: {
      inviteAccepted: async () => {},
      userIdsToRefresh: async () => [],
      bundlesToImport: opts.bundlesToImport ?? (async () => [...state.pending]),
      importBundle: async (b: PendingBundle) => {
        state.imported++;
        state.pending = state.pending.filter((p) => p !== b);
        return { imported: 0, total: 0, redecrypted: [] };
      },
      drop: async () => {
        state.pending = [];
      },
    },
  } as unknown as OlmMachine;
  const noop = () => {};
  const host: HistorySharingHost = {
    machine,
    logger: { debug: noop, info: noop, warn: noop, error: noop },
    exclusive: async (work) => {
      state.unitsRunning++;
      try {
        return await work();
      } finally {
        state.unitsRunning--;
      }
    },
    reportError: (e) => void state.reported.push(e),
    uploadMedia: async () => "mxc://hs/x",
    downloadMedia: async () => {
      state.downloads++;
      started();
      assert.equal(state.unitsRunning, 0, "a download does not hold the store's lease");
      if (state.gate !== undefined) await state.gate;
      state.onDownload?.();
      const bytes = ciphertext.slice();
      state.downloaded.push(new WeakRef(bytes));
      return bytes;
    },
    refreshDevices: async () => {},
    prepareRecipient: async () => {},
    flush: async () => {},
    emitRedecrypted: async () => {},
    restoreRoomFromBackup: async () => false,
  };
  return { sharing: new HistorySharing(host), state, downloading };
}

describe("history-sharing import passes", () => {
  it("joinRoom's pass and the sync's scheduled one download a bundle once", async () => {
    const { sharing, state, downloading } = harness();
    let open = () => {};
    state.gate = new Promise((resolve) => {
      open = resolve;
    });
    const joined = sharing.inviteAccepted(ROOM, ALICE);
    await downloading;
    sharing.schedule(); // the sync saw the join meanwhile
    sharing.schedule();
    open();
    await joined;
    await sharing.idle();
    assert.equal(state.downloads, 1);
    assert.equal(state.imported, 1);
  });

  it("a failing engine step in a background pass is reported and tried again, never thrown", async () => {
    let fail = true;
    const { sharing, state } = harness({
      bundlesToImport: async () => {
        if (fail) throw new Error("store unavailable");
        return [...state.pending];
      },
    });
    sharing.schedule();
    await sharing.idle();
    assert.equal(state.reported.length, 1);
    assert.equal(sharing.retryDue, true);
    fail = false;
    await sharing.run();
    assert.equal(state.imported, 1);
    assert.equal(sharing.retryDue, false);
  });

  it("joinRoom's pass resolves once that pass is done, while syncs keep asking for more", async () => {
    const { sharing, state } = harness();
    // The media repository is down: each download fails (a passing failure), and a sync comes
    // while it is under way that asks for another pass (a bundle arrived, or a retry is due).
    const syncsDuringPasses = 5;
    state.onDownload = () => {
      if (state.downloads <= syncsDuringPasses) sharing.schedule();
      throw new Error("502 from the media repository");
    };
    let downloadsWhenJoined: number | undefined;
    await sharing.inviteAccepted(ROOM, ALICE).then(() => {
      downloadsWhenJoined = state.downloads;
    });
    await sharing.idle();
    assert.equal(state.downloads, syncsDuringPasses + 1);
    assert.equal(downloadsWhenJoined, 1, "joinRoom waited for its own pass only");
  });

  it("a bundle's downloaded bytes are not kept once it is imported (nothing holds them until close)", async () => {
    setFlagsFromString("--expose_gc");
    const gc = runInNewContext("gc") as () => void;
    const { sharing, state } = harness();
    await sharing.run();
    assert.equal(state.imported, 1);
    // WeakRefs made in a job hold their target until it ends; a full collection after it.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    assert.equal(state.downloaded.length, 1);
    assert.equal(state.downloaded[0]?.deref(), undefined, "the ciphertext is still reachable");
    await sharing.close();
  });

  it("close does not wait for a download under way, and imports nothing after it", async () => {
    const { sharing, state, downloading } = harness();
    state.gate = new Promise(() => {}); // a download that never ends
    sharing.schedule();
    await downloading;
    await sharing.close();
    assert.equal(state.imported, 0);
    assert.deepEqual(state.reported, []);
    await sharing.run(); // refused quietly once closed
    await assert.rejects(sharing.inviteAccepted(ROOM, ALICE), ClientCryptoError);
  });
});
