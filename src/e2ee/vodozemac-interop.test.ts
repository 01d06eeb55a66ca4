/**
 * The whole protocol against matrix-rust-sdk's crypto engine (matrix-sdk-crypto-wasm, on
 * vodozemac: what matrix-js-sdk and Element run), both machines on the same fake homeserver:
 * device keys, one-time key claims, Olm to-device payloads, room keys and Megolm events must be
 * accepted by the other side in both directions.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as Wasm from "@matrix-org/matrix-sdk-crypto-wasm";
import { loadVodozemac } from "../../test/support/vodozemac.ts";
import type { EncryptedRoomEvent } from "./decryption/room-events.ts";
import { DecryptionError } from "./errors.ts";
import type { OutgoingRequest } from "./requests.ts";
import { FakeHomeserver, joined, TestClient } from "./test-support/fake-homeserver.ts";

const wasm = await loadVodozemac();

/** One matrix-rust-sdk device driven like a client would. */
class RustPeer {
  constructor(
    readonly hs: FakeHomeserver,
    readonly userId: string,
    readonly deviceId: string,
    readonly machine: Wasm.OlmMachine,
  ) {}

  static async create(hs: FakeHomeserver, userId: string, deviceId: string): Promise<RustPeer> {
    const machine = await wasm.OlmMachine.initialize(new wasm.UserId(userId), new wasm.DeviceId(deviceId));
    hs.device(userId, deviceId);
    const peer = new RustPeer(hs, userId, deviceId, machine);
    await peer.flush();
    return peer;
  }

  /** Translates the wasm request into the fake server's request shape and answers it. */
  async #send(r: { id?: string; type: Wasm.RequestType; body: string; event_type?: string }): Promise<void> {
    const body = JSON.parse(r.body);
    const id = r.id ?? "";
    let request: OutgoingRequest | undefined;
    switch (r.type) {
      case wasm.RequestType.KeysUpload:
        request = { id, type: "keys_upload", body };
        break;
      case wasm.RequestType.KeysQuery:
        request = { id, type: "keys_query", body };
        break;
      case wasm.RequestType.KeysClaim:
        request = { id, type: "keys_claim", body };
        break;
      case wasm.RequestType.ToDevice:
        request = { id, type: "to_device", eventType: r.event_type ?? "", body };
        break;
      default:
        request = undefined;
    }
    const response = request === undefined ? {} : this.hs.handle(this.userId, this.deviceId, request);
    await this.machine.markRequestAsSent(id, r.type, JSON.stringify(response));
  }

  async flush(): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const requests = await this.machine.outgoingRequests();
      if (requests.length === 0) return;
      for (const r of requests) await this.#send(r as { id: string; type: Wasm.RequestType; body: string });
    }
  }

  async sync(): Promise<void> {
    const data = this.hs.syncFor(this.userId, this.deviceId);
    await this.machine.receiveSyncChanges(
      JSON.stringify(data.toDevice),
      new wasm.DeviceLists(data.deviceLists.changed.map((u) => new wasm.UserId(u))),
      new Map(Object.entries(data.oneTimeKeyCounts)),
      new Set(data.unusedFallbackKeyTypes),
    );
    await this.flush();
  }

  async sendMessage(roomId: string, userIds: string[], body: string): Promise<EncryptedRoomEvent> {
    // wasm-bindgen moves the IDs into each call: fresh ones every time.
    const users = () => userIds.map((u) => new wasm.UserId(u));
    await this.machine.updateTrackedUsers(users());
    await this.flush();
    const claim = await this.machine.getMissingSessions(users());
    if (claim) await this.#send(claim as unknown as { id: string; type: Wasm.RequestType; body: string });
    const room = new wasm.RoomId(roomId);
    for (const r of await this.machine.shareRoomKey(room, users(), new wasm.EncryptionSettings())) {
      await this.#send(r);
    }
    const content = await this.machine.encryptRoomEvent(
      room,
      "m.room.message",
      JSON.stringify({ msgtype: "m.text", body }),
    );
    return {
      event_id: this.hs.nextEventId(),
      sender: this.userId,
      type: "m.room.encrypted",
      content: JSON.parse(content),
    };
  }

  async decrypt(event: EncryptedRoomEvent, roomId: string): Promise<{ sender: string; body: unknown }> {
    const decrypted = await this.machine.decryptRoomEvent(
      JSON.stringify({ ...event, room_id: roomId, origin_server_ts: 1 }),
      new wasm.RoomId(roomId),
      new wasm.DecryptionSettings(wasm.TrustRequirement.Untrusted),
    );
    const clear = JSON.parse(decrypted.event) as { content: { body: unknown } };
    return { sender: decrypted.sender.toString(), body: clear.content.body };
  }
}

describe("Keyroom ↔ matrix-rust-sdk (vodozemac)", () => {
  it("exchanges Olm and Megolm messages in both directions", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "ALICE" });
    const bob = await RustPeer.create(hs, "@bob:x", "BOB");
    await alice.sync();
    await bob.sync();
    const room = "!interop:x";

    // Keyroom → Rust: device keys, a claimed one-time key, an Olm pre-key message, Megolm.
    const fromAlice = await alice.sendMessage(room, joined("@alice:x", "@bob:x"), "hello from Keyroom");
    await bob.sync();
    assert.deepEqual(await bob.decrypt(fromAlice, room), { sender: "@alice:x", body: "hello from Keyroom" });

    // Rust → Keyroom: its room key over the Olm session (now both directions of it).
    const fromBob = await bob.sendMessage(room, ["@alice:x", "@bob:x"], "hello from Rust");
    const synced = await alice.sync();
    assert.deepEqual(synced.failures, []);
    const decrypted = await alice.machine.decryptRoomEvent(fromBob, room);
    assert.equal(decrypted.content.body, "hello from Rust");
    assert.equal(decrypted.senderDevice, "BOB");
    assert.equal(decrypted.trust, "unverified");

    // And a second round, on established sessions.
    await alice.machine.discardRoomKey(room);
    const again = await alice.sendMessage(room, joined("@alice:x", "@bob:x"), "second key");
    await bob.sync();
    assert.equal((await bob.decrypt(again, room)).body, "second key");
  });

  it("uses the fallback key of a Rust device whose one-time keys ran out, and vice versa", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "ALICE" });
    const bob = await RustPeer.create(hs, "@bob:x", "BOB");
    await bob.sync();
    await alice.sync();
    hs.exhaustOneTimeKeys("@bob:x", "BOB");
    hs.exhaustOneTimeKeys("@alice:x", "ALICE");
    const toBob = await alice.sendMessage("!a:x", joined("@alice:x", "@bob:x"), "via Rust's fallback key");
    await bob.sync();
    assert.equal((await bob.decrypt(toBob, "!a:x")).body, "via Rust's fallback key");
    const hs2 = new FakeHomeserver();
    const carol = await TestClient.create(hs2, { userId: "@carol:x", deviceId: "CAROL" });
    const dave = await RustPeer.create(hs2, "@dave:x", "DAVE");
    await carol.sync();
    hs2.exhaustOneTimeKeys("@carol:x", "CAROL");
    const toCarol = await dave.sendMessage("!b:x", ["@carol:x", "@dave:x"], "via Keyroom's fallback key");
    await carol.sync();
    assert.equal(
      (await carol.machine.decryptRoomEvent(toCarol, "!b:x")).content.body,
      "via Keyroom's fallback key",
    );
  });

  it("forwards room keys between a Keyroom device and a Rust device of the same user", async () => {
    const hs = new FakeHomeserver();
    const rust = await RustPeer.create(hs, "@alice:x", "RUST");
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "BOB" });
    await rust.sync();
    const room = "!forward:x";
    const before = await bob.sendMessage(room, joined("@alice:x", "@bob:x"), "before Keyroom joined");
    await rust.sync();
    assert.equal((await rust.decrypt(before, room)).body, "before Keyroom joined");

    // Alice adds a Keyroom device; each of her devices verifies the other.
    const keyroom = await TestClient.create(hs, { userId: "@alice:x", deviceId: "KEYROOM" });
    await keyroom.machine.updateTrackedUsers(["@bob:x"]);
    await keyroom.sync();
    await rust.sync();
    const device = await rust.machine.getDevice(new wasm.UserId("@alice:x"), new wasm.DeviceId("KEYROOM"));
    assert.ok(device, "Rust knows the Keyroom device");
    await device.setLocalTrust(wasm.LocalTrust.Verified);
    await keyroom.machine.setDeviceTrust("@alice:x", "RUST", "verified");

    // Keyroom lacks the key: it asks, Rust forwards, the waiting event decrypts.
    await assert.rejects(keyroom.machine.decryptRoomEvent(before, room), { code: "UNKNOWN_SESSION" });
    await keyroom.flush();
    await rust.sync();
    await rust.sync();
    const synced = await keyroom.sync();
    assert.deepEqual(synced.failures, []);
    assert.equal(synced.redecrypted[0]?.content.body, "before Keyroom joined");
    assert.equal(synced.redecrypted[0]?.forwarded, true);
  });

  it("answers a Rust device's key request from a Keyroom device of the same user", async () => {
    const hs = new FakeHomeserver();
    const keyroom = await TestClient.create(hs, { userId: "@alice:x", deviceId: "KEYROOM" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "BOB" });
    await keyroom.sync();
    const room = "!request:x";
    const before = await bob.sendMessage(room, joined("@alice:x", "@bob:x"), "before Rust joined");
    await keyroom.sync();

    const rust = await RustPeer.create(hs, "@alice:x", "RUST");
    rust.machine.roomKeyRequestsEnabled = true;
    await rust.machine.updateTrackedUsers([new wasm.UserId("@bob:x")]);
    await rust.sync();
    await keyroom.sync();
    const device = await rust.machine.getDevice(new wasm.UserId("@alice:x"), new wasm.DeviceId("KEYROOM"));
    assert.ok(device);
    await device.setLocalTrust(wasm.LocalTrust.Verified);
    await keyroom.machine.setDeviceTrust("@alice:x", "RUST", "verified");

    await assert.rejects(rust.decrypt(before, room));
    await rust.flush(); // sends its m.room_key_request
    await keyroom.sync(); // answers (claims an Olm session with RUST first)
    await rust.sync();
    assert.equal((await rust.decrypt(before, room)).body, "before Rust joined");
  });

  it("understands each other's m.room_key.withheld", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "ALICE" });
    const bob = await RustPeer.create(hs, "@bob:x", "BOB");
    await alice.sync();
    await bob.sync();
    await bob.machine.updateTrackedUsers([new wasm.UserId("@alice:x")]);
    await bob.flush();
    const device = await bob.machine.getDevice(new wasm.UserId("@alice:x"), new wasm.DeviceId("ALICE"));
    assert.ok(device);
    await device.setLocalTrust(wasm.LocalTrust.BlackListed);
    const fromBob = await bob.sendMessage("!w:x", ["@alice:x", "@bob:x"], "not for Alice");
    await alice.sync();
    await assert.rejects(
      alice.machine.decryptRoomEvent(fromBob, "!w:x"),
      (e) => e instanceof DecryptionError && e.code === "WITHHELD" && e.withheldCode === "m.blacklisted",
    );

    await alice.machine.updateTrackedUsers(["@bob:x"]);
    await alice.flush();
    await alice.machine.setDeviceTrust("@bob:x", "BOB", "blacklisted");
    const fromAlice = await alice.sendMessage("!w2:x", joined("@alice:x", "@bob:x"), "not for Bob");
    await bob.sync();
    await assert.rejects(
      bob.decrypt(fromAlice, "!w2:x"),
      (e) =>
        e instanceof wasm.MegolmDecryptionError &&
        e.code === wasm.DecryptionErrorCode.MissingRoomKey &&
        e.withheldCode === "m.blacklisted",
    );
  });
});
