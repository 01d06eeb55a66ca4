// Cross-signing between Keyroom and matrix-js-sdk (Rust crypto: matrix-sdk-crypto-wasm) through the
// devserver: each accepts the other's signatures, Keyroom's private keys work inside js-sdk, an
// identity reset by js-sdk is flagged by Keyroom and one by Keyroom by js-sdk, and each side's
// "verified devices only" sending withholds keys from the other's device (with the code the other
// reports) until that device is trusted.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixEventEvent } from "matrix-js-sdk";
import type { RoomEvent } from "../../src/index.ts";
import { type JsSdkPeer, PEER_TEST_TIMEOUT_MS, skipUnlessAvailable } from "../support/peers/index.ts";
import { jsSdkDevice } from "../support/peers/jssdk-devices.ts";
import { devServerFixture, keyroomDevice, type TestClient, uniq } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-xsign-jssdk-");

/** Syncs `t` until `pred` holds; bounded by attempts (each a short long-poll), not wall time. */
async function syncUntil(
  t: TestClient,
  pred: () => Promise<boolean>,
  what: string,
  attempts = 100,
): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await pred()) return;
    await t.client.syncOnce({ timeoutMs: 200 });
  }
  assert.ok(await pred(), `not reached by sync: ${what}`);
}

/** A room of `kr` with `peer` joined, both sides having seen the join. */
async function roomWith(kr: TestClient, peer: JsSdkPeer): Promise<string> {
  const roomId = await kr.client.createRoom({ name: "xsign", invite: [peer.userId] });
  await peer.waitForMembership(roomId, peer.userId, "invite");
  await peer.join(roomId);
  await syncUntil(
    kr,
    async () => kr.client.getRoom(roomId)?.getMember(peer.userId)?.membership === "join",
    "peer joined",
  );
  return roomId;
}

/** A Keyroom user and a js-sdk user, each with a cross-signing identity, in a room together. */
async function crossSignedPair(): Promise<{ kr: TestClient; js: JsSdkPeer }> {
  const kr = await keyroomDevice(fx, uniq("xk"), "register");
  const js = await jsSdkDevice(fx, uniq("xj"), "register");
  await kr.client.bootstrapCrossSigning();
  await js.bootstrapCrossSigning("pw");
  await roomWith(kr, js);
  return { kr, js };
}

describe("cross-signing: Keyroom ↔ matrix-js-sdk (devserver)", () => {
  it("each accepts the other's cross-signing signatures; Keyroom's private keys work in js-sdk", {
    timeout: PEER_TEST_TIMEOUT_MS * 2,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const { kr, js } = await crossSignedPair();

    // js-sdk → Keyroom: js-sdk's device is cross-signed by its owner, and its identity is pinned.
    await syncUntil(
      kr,
      async () =>
        (await kr.client.getUserDevices(js.userId)).some((d) => d.deviceId === js.deviceId && d.crossSigned),
      "js-sdk device cross-signed in Keyroom's eyes",
    );
    assert.equal((await kr.client.getUserIdentity(js.userId))?.state, "pinned");

    // Keyroom → js-sdk: Keyroom's device is signed by its owner's self-signing key.
    await js.waitForDeviceStatus(kr.client.userId, kr.client.deviceId as string, (s) => s.signedByOwner);

    // Keyroom verifies the js-sdk user: its user-signing key signs their master key.
    const verified = await kr.client.verifyUser(js.userId);
    assert.equal(verified.verified, true);
    assert.equal(
      (await kr.client.getUserDevices(js.userId)).find((d) => d.deviceId === js.deviceId)?.verified,
      true,
    );

    // A js-sdk device of the Keyroom user, given Keyroom's private keys (the secrets bundle format):
    // it trusts Keyroom's identity, Keyroom's device, and the js-sdk user through Keyroom's signature.
    const krJs = await jsSdkDevice(fx, kr.name, "login");
    const keys = await kr.client.crypto.machine.exportCrossSigningKeys();
    const crypto = krJs.client.getCrypto();
    assert.ok(crypto?.importSecretsBundle !== undefined);
    await crypto.importSecretsBundle({
      cross_signing: {
        master_key: keys.master as string,
        self_signing_key: keys.selfSigning as string,
        user_signing_key: keys.userSigning as string,
      },
    });
    await krJs.waitForDeviceStatus(
      kr.client.userId,
      kr.client.deviceId as string,
      (s) => s.crossSigningVerified,
    );
    const status = await crypto.getUserVerificationStatus(js.userId);
    assert.equal(status.isCrossSigningVerified(), true, "js-sdk accepts Keyroom's user-signing signature");

    // js-sdk signs its own new device with Keyroom's self-signing key; Keyroom accepts it and, holding
    // the master key, counts that device verified.
    await crypto.crossSignDevice(krJs.deviceId);
    await syncUntil(
      kr,
      async () =>
        (await kr.client.getUserDevices(kr.client.userId)).some(
          (d) => d.deviceId === krJs.deviceId && d.crossSigned && d.verified,
        ),
      "the js-sdk device signed with Keyroom's keys",
    );
  });

  it("a js-sdk user resets cross-signing: Keyroom flags a change (a violation once verified), accept clears it", {
    timeout: PEER_TEST_TIMEOUT_MS * 2,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const kr = await keyroomDevice(fx, uniq("xk"), "register");
    const js = await jsSdkDevice(fx, uniq("xj"), "register");
    const plain = await jsSdkDevice(fx, uniq("xp"), "register"); // an identity Keyroom never verifies
    await kr.client.bootstrapCrossSigning();
    await js.bootstrapCrossSigning("pw");
    await plain.bootstrapCrossSigning("pw");
    const roomId = await roomWith(kr, js);
    await kr.client.invite(roomId, plain.userId);
    await plain.waitForMembership(roomId, plain.userId, "invite");
    await plain.join(roomId);
    await syncUntil(
      kr,
      async () => (await kr.client.getUserIdentity(plain.userId)) !== undefined,
      "plain's identity",
    );
    const first = await kr.client.getUserIdentity(js.userId);
    assert.ok(first);
    await kr.client.verifyUser(js.userId);

    await js.resetCrossSigning("pw");
    await plain.resetCrossSigning("pw");
    await syncUntil(
      kr,
      async () => (await kr.client.getUserIdentity(js.userId))?.masterKey !== first.masterKey,
      "the new identity",
    );
    await syncUntil(
      kr,
      async () => (await kr.client.getUserIdentity(plain.userId))?.changed === true,
      "plain's new identity",
    );
    const changed = await kr.client.getUserIdentity(js.userId);
    assert.equal(changed?.changed, true);
    assert.equal(changed?.violation, true);
    assert.equal(changed?.state, "violation");
    const plainChanged = await kr.client.getUserIdentity(plain.userId);
    assert.equal(plainChanged?.state, "changed");
    assert.equal(plainChanged?.violation, false);

    // A message from the reset user carries the status.
    const eventId = await js.sendText(roomId, "after my reset");
    await syncUntil(
      kr,
      async () => [...kr.events, ...kr.late].some((e) => e.eventId === eventId && e.encryption?.decrypted),
      "the message",
    );
    const ev = [...kr.events, ...kr.late]
      .filter((e) => e.eventId === eventId && e.encryption?.decrypted)
      .at(-1);
    assert.ok(ev?.encryption?.decrypted === true);
    assert.equal(ev.encryption.senderIdentity, "violation");

    const accepted = await kr.client.acceptIdentityChange(js.userId);
    assert.equal(accepted.changed, false);
    assert.equal(accepted.violation, false);
    assert.equal((await kr.client.acceptIdentityChange(plain.userId)).state, "pinned");
  });

  it("only cross-signed devices: a js-sdk device gets m.unverified and cannot read, then can once cross-signed", {
    timeout: PEER_TEST_TIMEOUT_MS * 2,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const kr = await keyroomDevice(fx, uniq("xk"), "register", { shareWith: "cross_signed" });
    const js = await jsSdkDevice(fx, uniq("xj"), "register");
    const roomId = await roomWith(kr, js);

    const hidden = await kr.client.sendText(roomId, "for cross-signed devices only");
    const seen = await js.waitForMessage(roomId, (m) => m.eventId === hidden);
    assert.equal(seen.decrypted, false);
    const raw = js.client.getRoom(roomId)?.findEventById(hidden);
    assert.ok(raw);
    // The withheld notice may arrive after the first attempt: js-sdk decrypts again when it does.
    const unverified = "MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE"; // js-sdk's name for code m.unverified
    for (let i = 0; i < 5 && raw.decryptionFailureReason !== unverified; i++) {
      await new Promise((resolve) => raw.once(MatrixEventEvent.Decrypted, resolve));
    }
    assert.equal(raw.decryptionFailureReason, unverified);

    await js.bootstrapCrossSigning("pw");
    await syncUntil(
      kr,
      async () => (await kr.client.getUserDevices(js.userId)).some((d) => d.crossSigned),
      "the js-sdk device cross-signed",
    );
    const shown = await kr.client.sendText(roomId, "now you can read this");
    const read = await js.waitForMessage(roomId, (m) => m.eventId === shown && m.decrypted);
    assert.equal(read.body, "now you can read this");
  });

  it("Keyroom resets cross-signing: js-sdk asks its user to approve the new identity, pinning clears it", {
    timeout: PEER_TEST_TIMEOUT_MS * 2,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const { kr, js } = await crossSignedPair();
    const first = await js.waitForUserStatus(kr.client.userId, (s) => s.known);
    assert.equal(first.needsUserApproval, false, "a first identity is trusted on first use");

    await kr.client.bootstrapCrossSigning({ reset: true, auth: { password: "pw" } });
    // Keyroom's device list change reaches js-sdk through the shared room.
    const changed = await js.waitForUserStatus(kr.client.userId, (s) => s.needsUserApproval);
    assert.equal(changed.isCrossSigningVerified(), false);
    await js.waitForDeviceStatus(kr.client.userId, kr.client.deviceId as string, (s) => s.signedByOwner);

    await js.client.getCrypto()?.pinCurrentUserIdentity(kr.client.userId);
    assert.equal((await js.waitForUserStatus(kr.client.userId, () => true)).needsUserApproval, false);
  });

  it("js-sdk sends to verified devices only: Keyroom reports m.unverified, then reads once js-sdk trusts its device", {
    timeout: PEER_TEST_TIMEOUT_MS * 2,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const kr = await keyroomDevice(fx, uniq("xk"), "register");
    const js = await jsSdkDevice(fx, uniq("xj"), "register");
    const roomId = await roomWith(kr, js);
    const crypto = js.client.getCrypto();
    assert.ok(crypto);
    crypto.globalBlacklistUnverifiedDevices = true;

    const hidden = await js.sendText(roomId, "for verified devices only");
    // The notice may come in a later sync than the event: then the event is emitted again.
    const withheld = (): RoomEvent | undefined =>
      [...kr.events, ...kr.withheld].find(
        (e) => e.eventId === hidden && e.encryption?.decrypted === false && e.encryption.code === "WITHHELD",
      );
    await syncUntil(kr, async () => withheld() !== undefined, "the withheld notice");
    const notice = withheld()?.encryption;
    assert.ok(notice?.decrypted === false);
    assert.equal(notice.withheldCode, "m.unverified", "the code js-sdk sent, as Keyroom reports it");

    // js-sdk's user marks Keyroom's device verified: the next message is shared with it.
    await crypto.setDeviceVerified(kr.client.userId, kr.client.deviceId as string);
    const shown = await js.sendText(roomId, "now verified");
    await syncUntil(
      kr,
      // Decrypted when first emitted, or later (`room.decrypted`) if its key came in a later sync.
      async () =>
        [...kr.events, ...kr.late].some((e) => e.eventId === shown && e.encryption?.decrypted === true),
      "the message to the verified device",
    );
  });
});
