// Dehydrated devices (MSC3814) and history sharing on invite (MSC4268) between Keyroom and
// matrix-js-sdk 43 (Rust crypto: matrix-sdk-crypto-wasm) through the devserver, each direction;
// and one user's dehydrated device made by one SDK and rehydrated by the other.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type JsSdkPeer, PEER_TEST_TIMEOUT_MS, skipUnlessAvailable } from "../support/peers/index.ts";
import { jsSdkDevice } from "../support/peers/jssdk-devices.ts";
import { devServerFixture, keyroomDevice, texts, uniq } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-dehydration-jssdk-");

function jsCrypto(peer: JsSdkPeer) {
  const crypto = peer.client.getCrypto();
  assert.ok(crypto, "js-sdk has crypto");
  return crypto;
}

describe("dehydrated devices with matrix-js-sdk (devserver)", () => {
  it("js-sdk dehydrates and goes offline; Keyroom writes; a new js-sdk login rehydrates and reads", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("jsdh");
    const js = await jsSdkDevice(fx, name, "register");
    await js.bootstrapCrossSigning("pw");
    const recoveryKey = await js.bootstrapSecretStorage();
    assert.equal(await jsCrypto(js).isDehydrationSupported(), true);
    await jsCrypto(js).startDehydration({ createNewKey: true });

    const kr = await keyroomDevice(fx, uniq("krdh"), "register");
    const roomId = await kr.client.createRoom({ name: "to js", invite: [js.userId] });
    await js.join(roomId);
    await kr.client.syncOnce({ timeoutMs: 0 });
    const devices = await kr.client.getUserDevices(js.userId);
    assert.equal(devices.length, 2, "js-sdk's device and its dehydrated device");
    assert.ok(devices.every((d) => d.crossSigned));

    await js.logout();
    await kr.client.syncOnce({ timeoutMs: 0 });
    await kr.client.sendText(roomId, "while js was away");

    const back = await jsSdkDevice(fx, name, "login");
    await back.recoverWithRecoveryKey(recoveryKey);
    await jsCrypto(back).startDehydration({});
    const m = await back.waitForMessage(roomId, (x) => x.body === "while js was away");
    assert.equal(m.decrypted, true);
  });

  it("Keyroom dehydrates and goes offline; js-sdk writes; a new Keyroom login rehydrates and reads", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("krdh");
    const kr = await keyroomDevice(fx, name, "register");
    await kr.client.bootstrapCrossSigning();
    // Recovery: the new login takes the cross-signing keys too (its new dehydrated device is cross-signed).
    const { recoveryKey } = await kr.client.crypto.recovery.enable();
    const storageKey = await kr.client.crypto.secretStorage.unlock({ recoveryKey });
    await kr.client.crypto.dehydration.start({ secretStorageKey: storageKey });
    const userId = kr.client.userId;

    const js = await jsSdkDevice(fx, uniq("jsw"), "register");
    const roomId = await js.createRoom({ encrypted: true, name: "to keyroom", invite: [userId] });
    await kr.client.syncOnce({ timeoutMs: 0 });
    await kr.client.joinRoom(roomId);
    await kr.client.logout();
    await js.waitForDevices(userId, (ids) => ids.length === 1);
    await js.sendText(roomId, "while keyroom was away");

    const back = await keyroomDevice(fx, name, "login");
    await back.client.crypto.recovery.recover({ recoveryKey });
    const key = await back.client.crypto.secretStorage.unlock({ recoveryKey });
    const result = await back.client.crypto.dehydration.start({ secretStorageKey: key });
    assert.ok((result?.imported ?? 0) >= 1, JSON.stringify(result));
    await back.client.syncOnce({ timeoutMs: 0 });
    assert.ok(texts(back, roomId).includes("while keyroom was away"));
  });
});

describe("one user's dehydrated device across SDKs (devserver)", () => {
  it("Keyroom dehydrates (key in secret storage); a new js-sdk login of the same user rehydrates it and reads", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("xkr");
    const kr = await keyroomDevice(fx, name, "register");
    const { recoveryKey } = await kr.client.crypto.recovery.enable();
    const storageKey = await kr.client.crypto.secretStorage.unlock({ recoveryKey });
    await kr.client.crypto.dehydration.start({ secretStorageKey: storageKey });
    const userId = kr.client.userId;

    const alice = await keyroomDevice(fx, uniq("xka"), "register");
    const roomId = await alice.client.createRoom({ name: "x", invite: [userId] });
    await kr.client.syncOnce({ timeoutMs: 0 });
    await kr.client.joinRoom(roomId);
    await kr.client.logout();
    await alice.client.syncOnce({ timeoutMs: 0 });
    await alice.client.sendText(roomId, "for whichever SDK comes back");

    const js = await jsSdkDevice(fx, name, "login");
    await js.recoverWithRecoveryKey(recoveryKey);
    await jsCrypto(js).startDehydration({});
    const m = await js.waitForMessage(roomId, (x) => x.body === "for whichever SDK comes back");
    assert.equal(m.decrypted, true);
  });

  it("js-sdk dehydrates; a new Keyroom login of the same user rehydrates it with the key from secret storage", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("xjs");
    const js = await jsSdkDevice(fx, name, "register");
    await js.bootstrapCrossSigning("pw");
    const recoveryKey = await js.bootstrapSecretStorage();
    await jsCrypto(js).startDehydration({ createNewKey: true });

    const alice = await keyroomDevice(fx, uniq("xja"), "register");
    const roomId = await alice.client.createRoom({ name: "x", invite: [js.userId] });
    await js.join(roomId);
    await js.logout();
    await alice.client.syncOnce({ timeoutMs: 0 });
    await alice.client.sendText(roomId, "for the Keyroom login");

    const kr = await keyroomDevice(fx, name, "login");
    const storageKey = await kr.client.crypto.secretStorage.unlock({ recoveryKey });
    const result = await kr.client.crypto.dehydration.rehydrate(
      await kr.client.crypto.dehydration.keyFromSecretStorage(storageKey),
    );
    assert.ok((result?.imported ?? 0) >= 1, JSON.stringify(result));
    await kr.client.syncOnce({ timeoutMs: 0 });
    assert.ok(texts(kr, roomId).includes("for the Keyroom login"));
  });
});

describe("history sharing on invite with matrix-js-sdk (devserver)", () => {
  it("js-sdk invites Keyroom, which reads the history from before the invite", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const js = await jsSdkDevice(fx, uniq("jshs"), "register");
    await js.bootstrapCrossSigning("pw");
    const kr = await keyroomDevice(fx, uniq("krhs"), "register");
    await kr.client.bootstrapCrossSigning();
    const roomId = await js.createRoom({ encrypted: true, name: "js history" });
    await js.client.sendStateEvent(
      roomId,
      "m.room.history_visibility" as never,
      { history_visibility: "shared" } as never,
      "",
    );
    await js.sendText(roomId, "before keyroom was invited");
    await js.client.invite(roomId, kr.client.userId); // js-sdk sends its bundle here
    await kr.client.syncOnce({ timeoutMs: 0 });
    await kr.client.joinRoom(roomId);
    await kr.client.syncOnce({ timeoutMs: 0 });
    assert.ok(texts(kr, roomId).includes("before keyroom was invited"), JSON.stringify(texts(kr, roomId)));
  });

  it("Keyroom invites js-sdk, which reads the history from before the invite", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const kr = await keyroomDevice(fx, uniq("krhi"), "register");
    await kr.client.bootstrapCrossSigning();
    const js = await jsSdkDevice(fx, uniq("jshi"), "register");
    await js.bootstrapCrossSigning("pw");
    const roomId = await kr.client.createRoom({
      name: "keyroom history",
      initialState: [
        { type: "m.room.history_visibility", state_key: "", content: { history_visibility: "shared" } },
      ],
    });
    await kr.client.sendText(roomId, "before js was invited");
    // No sync since creating the room: invite reads its state (history visibility) from the server.
    await kr.client.invite(roomId, js.userId); // Keyroom sends its bundle here
    await js.waitForMembership(roomId, js.userId, "invite");
    await js.join(roomId); // js-sdk accepts the inviter's bundle on join
    const m = await js.waitForMessage(roomId, (x) => x.body === "before js was invited");
    assert.equal(m.decrypted, true);
  });
});
