/** Olm sessions under hostile input: replays after pruning, bad plaintext, junk from made-up keys. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Account } from "../../crypto/olm/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { OwnEchoes } from "../decryption/own-echoes.ts";
import { ReplayGuard } from "../decryption/replay.ts";
import { HeldKeyRequests } from "../key-requests/held.ts";
import { MAX_TO_DEVICE_CIPHERTEXT_BYTES } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";
import { emptyChanges } from "../machine-context.ts";
import { buildParts } from "../machine-parts.ts";
import { newSecretGossipState } from "../secret-storage/gossip.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { junkOlmEvent, RawOlmPeer } from "../test-support/raw-peer.ts";
import {
  MAX_SESSIONS_PER_DEVICE,
  MAX_WEDGED_DEVICES,
  OLM_SESSION_CACHE_SIZE,
  UNWEDGE_INTERVAL_MS,
} from "./sessions.ts";

const ROOM = "!room:x";

function clock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe("Olm sessions under hostile input", () => {
  it("refuses a pre-key message made on the fallback key a second time, after its session was pruned", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const mallory = new RawOlmPeer("@mallory:x", "M");
    mallory.publish(hs);
    hs.exhaustOneTimeKeys("@bob:x", "B"); // claims now hand out Bob's fallback key
    const first = mallory.encrypt(hs, bob, mallory.payload(bob, "m.dummy", {}));
    assert.deepEqual((await bob.machine.receiveSyncChanges({ toDevice: [first] })).failures, []);
    // Enough newer sessions on the same fallback key that the first one is pruned.
    for (let i = 0; i < MAX_SESSIONS_PER_DEVICE; i++) {
      mallory.startSession(hs, bob);
      const event = mallory.encrypt(hs, bob, mallory.payload(bob, "m.dummy", { i }));
      assert.deepEqual((await bob.machine.receiveSyncChanges({ toDevice: [event] })).failures, []);
    }
    const replayed = await bob.machine.receiveSyncChanges({ toDevice: [first] });
    assert.deepEqual(
      replayed.failures.map((f) => f.code),
      ["REPLAYED"],
    );
    assert.deepEqual(replayed.toDevice, []);
    // Also after a restart (the record is in the store).
    await bob.restart();
    const again = await bob.machine.receiveSyncChanges({ toDevice: [first] });
    assert.deepEqual(
      again.failures.map((f) => f.code),
      ["REPLAYED"],
    );
  });

  it("reports plaintext that is not UTF-8 as BAD_PAYLOAD and does not mark the device wedged", async () => {
    const hs = new FakeHomeserver();
    const time = clock();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: time.now });
    const mallory = new RawOlmPeer("@mallory:x", "M");
    mallory.publish(hs);
    await bob.machine.updateTrackedUsers(["@mallory:x"]);
    await bob.flush();
    const bad = mallory.encrypt(hs, bob, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));
    const result = await bob.machine.receiveSyncChanges({ toDevice: [bad] });
    assert.deepEqual(
      result.failures.map((f) => f.code),
      ["BAD_PAYLOAD"],
    );
    // Bob replies once, so Mallory's next messages are normal (type 1) messages.
    const { request } = await bob.machine.encryptToDevice(
      "m.dummy",
      [{ userId: "@mallory:x", deviceId: "M" }],
      {},
    );
    assert.ok(request);
    const reply = request.body.messages["@mallory:x"]?.M as {
      ciphertext: Record<string, { type: 0 | 1; body: string }>;
    };
    const toMallory = reply.ciphertext[mallory.curve25519];
    assert.ok(toMallory);
    mallory.session(bob, hs).decrypt(toMallory);
    await bob.flush();
    time.advance(UNWEDGE_INTERVAL_MS + 1);
    const normal = mallory.encrypt(hs, bob, new Uint8Array([0xc0, 0x80]));
    assert.equal(
      (normal.content.ciphertext as Record<string, { type: number }>)[bob.machine.identityKeys.curve25519]
        ?.type,
      1,
    );
    const second = await bob.machine.receiveSyncChanges({ toDevice: [normal] });
    assert.deepEqual(
      second.failures.map((f) => f.code),
      ["BAD_PAYLOAD"],
    );
    assert.equal(
      (await bob.machine.outgoingRequests()).filter((r) => r.type === "keys_claim").length,
      0,
      "a working session is not replaced",
    );
    // The session still works.
    const good = mallory.encrypt(hs, bob, mallory.payload(bob, "m.dummy", {}));
    assert.deepEqual((await bob.machine.receiveSyncChanges({ toDevice: [good] })).failures, []);
  });

  it("refuses an Olm message larger than a to-device message can be, before decrypting it", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const mallory = new RawOlmPeer("@mallory:x", "M");
    mallory.publish(hs);
    const real = mallory.encrypt(hs, bob, mallory.payload(bob, "m.dummy", { pad: "p".repeat(30_000) }));
    const ciphertext = real.content.ciphertext as Record<string, { type: 0 | 1; body: string }>;
    const ours = ciphertext[bob.machine.identityKeys.curve25519];
    assert.ok(ours);
    const huge = {
      ...real,
      content: {
        ...real.content,
        ciphertext: {
          [bob.machine.identityKeys.curve25519]: {
            type: ours.type,
            body: "A".repeat(MAX_TO_DEVICE_CIPHERTEXT_BYTES + 1),
          },
        },
      },
    };
    const refused = await bob.machine.receiveSyncChanges({ toDevice: [huge] });
    assert.deepEqual(
      refused.failures.map((f) => f.code),
      ["TOO_LARGE"],
    );
    // A large genuine message still decrypts afterwards.
    const ok = await bob.machine.receiveSyncChanges({ toDevice: [real] });
    assert.deepEqual(ok.failures, []);
    assert.equal(ok.toDevice[0]?.type, "m.dummy");
  });

  it("bounds the wedged set and the session cache against junk from made-up keys, keeping real devices", async () => {
    const time = clock();
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now: time.now });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: time.now });
    await bob.machine.updateTrackedUsers(["@alice:x"]);
    await bob.sync();
    await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "hi");
    await bob.sync();
    await bob.machine.close();
    await bob.store.close();
    const store = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B", data: bob.data });
    const ctx: MachineContext = {
      userId: "@bob:x",
      deviceId: "B",
      store,
      now: time.now,
      tx: emptyChanges(),
    };
    const parts = await buildParts(ctx, {
      replays: new ReplayGuard(),
      ownEchoes: new OwnEchoes(),
      heldKeyRequests: new HeldKeyRequests(),
      signatureUploads: new Map(),
      secretGossip: newSecretGossipState(),
      settingsDefaults: {
        verifyDevices: false,
        onlyVerifiedDevices: false,
        shareWith: "all",
        errorOnVerifiedUserProblems: false,
      },
    });
    await parts.devices.devicesOf("@alice:x");
    time.advance(UNWEDGE_INTERVAL_MS + 1);
    const aliceKey = alice.machine.identityKeys.curve25519;
    const real = await parts.olm.decrypt("@alice:x", junkOlmEvent("@alice:x", aliceKey, bob).content);
    assert.equal(real.ok ? "ok" : real.code, "NO_SESSION");
    const junk = OLM_SESSION_CACHE_SIZE + 200;
    for (let i = 0; i < junk; i++) {
      const key = Account.create().identityKeys.curve25519;
      const r = await parts.olm.decrypt("@junk:x", junkOlmEvent("@junk:x", key, bob).content);
      assert.equal(r.ok ? "ok" : r.code, "NO_SESSION");
    }
    const wedged = parts.olm.wedged();
    assert.ok(wedged.length <= MAX_WEDGED_DEVICES, `${wedged.length} wedged entries`);
    assert.ok(
      wedged.some((w) => w.curve25519 === aliceKey),
      "the real device is still waiting",
    );
    parts.olm.trimCache();
    assert.ok(parts.olm.cachedPeers <= OLM_SESSION_CACHE_SIZE);
    await store.close();
  });
});
