// A client whose sender requirement refuses devices not cross-signed (`senderRequirement:
// "refuse"`) refused the in-room verification events of such a device like any message, so it
// could not be verified in a DM at all. Its verification events now reach the verification flow
// (their MACs protect them); its ordinary messages stay refused.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { VerificationRequest } from "../../src/client/index.ts";
import {
  compareAndConfirm,
  devServerFixture,
  eventById,
  newUser,
  type TestClient,
  until,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-verify-refuse-");

describe("in-room verification under senderRequirement: refuse", () => {
  it("a device not cross-signed is verified in a DM; its messages stay refused", async () => {
    const alice: TestClient = await newUser(fx.hs, fx.dir, "ra", { senderRequirement: "refuse" });
    fx.open.push(alice.client);
    const bob = await newUser(fx.hs, fx.dir, "rb"); // no cross-signing: his device is not cross-signed
    fx.open.push(bob.client);
    await alice.client.bootstrapCrossSigning();
    const roomId = await bob.client.createDirectRoom(alice.client.userId, { encrypted: true });
    await alice.client.syncOnce({ timeoutMs: 0 });
    await alice.client.joinRoom(roomId);
    await bob.client.syncOnce({ timeoutMs: 0 });

    const text = await bob.client.sendText(roomId, "an ordinary message");
    let incoming: VerificationRequest | undefined;
    alice.client.on("verification.request", (r) => {
      incoming = r;
    });
    const outgoing = await bob.client.requestVerification(alice.client.userId);
    assert.equal(outgoing.roomId, roomId);
    await alice.client.syncOnce({ timeoutMs: 0 });
    const refused = eventById(alice, text).encryption;
    assert.ok(refused?.decrypted === false);
    assert.equal(refused.code, "SENDER_NOT_CROSS_SIGNED", "ordinary messages stay refused");
    await until("alice gets bob's request", () => incoming !== undefined);
    const request = incoming as VerificationRequest;
    assert.equal(request.otherUserId, bob.client.userId);

    await alice.client.startSync();
    await bob.client.startSync();
    try {
      await request.accept();
      await outgoing.waitFor((s) => s.phase === "ready");
      await outgoing.startSas();
      await compareAndConfirm(outgoing, request);
      const seen = await alice.client.getUserDevices(bob.client.userId);
      assert.equal(seen.find((d) => d.deviceId === bob.client.deviceId)?.trust, "verified");
    } finally {
      await alice.client.stopSync();
      await bob.client.stopSync();
    }
  });
});
