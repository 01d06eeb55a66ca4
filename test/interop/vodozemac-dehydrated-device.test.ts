// Dehydrated devices (MSC3814, org.matrix.msc3814.v2) against matrix-rust-sdk's crypto on vodozemac,
// as shipped in @matrix-org/matrix-sdk-crypto-wasm: a device dehydrated by the rust-sdk is
// rehydrated by Keyroom and takes pre-key messages to its uploaded one-time and fallback keys; a
// device dehydrated by Keyroom is rehydrated by the rust-sdk and imports a room key sent to it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OutboundGroupSession } from "../../src/crypto/megolm/index.ts";
import {
  DEHYDRATED_DEVICE_ALGORITHM,
  fromDehydratedDevice,
  toDehydratedDevice,
} from "../../src/crypto/olm/account/dehydrated-device.ts";
import { Account, OlmError } from "../../src/crypto/olm/index.ts";
import { randomBytes, utf8Decode } from "../../src/crypto/primitives/index.ts";
import {
  createDehydratedDevice,
  parseDehydratedDevice,
  rehydrateDevice,
} from "../../src/e2ee/dehydration/index.ts";
import { loadVodozemac } from "../support/vodozemac.ts";

interface UploadBody {
  device_id: string;
  device_data: { algorithm: string; device_pickle: string; nonce: string };
  device_keys: { keys: Record<string, string> };
  one_time_keys: Record<string, { key: string }>;
  fallback_keys: Record<string, { key: string }>;
}

/**
 * An `m.room.encrypted` to-device event from a fresh sender ("@bob:x") carrying a new room key of
 * `roomId` to the device with these identity keys, over an Olm session made with `oneTimeKey` (a
 * one-time or fallback key). Returns the event and the Megolm session ID it carries.
 */
function roomKeyTo(
  recipient: { curve25519: string; ed25519: string },
  oneTimeKey: string,
  roomId: string,
): { event: Record<string, unknown>; sessionId: string } {
  const bob = Account.create();
  const room = OutboundGroupSession.create();
  const payload = {
    type: "m.room_key",
    content: {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: roomId,
      session_id: room.sessionId,
      session_key: room.sessionKey(),
    },
    sender: "@bob:x",
    sender_device: "BOB",
    keys: { ed25519: bob.identityKeys.ed25519 },
    recipient: "@alice:x",
    recipient_keys: { ed25519: recipient.ed25519 },
  };
  const session = bob.createOutboundSession(recipient.curve25519, oneTimeKey);
  const event = {
    type: "m.room.encrypted",
    sender: "@bob:x",
    content: {
      algorithm: "m.olm.v1.curve25519-aes-sha2",
      sender_key: bob.identityKeys.curve25519,
      ciphertext: { [recipient.curve25519]: session.encrypt(JSON.stringify(payload)) },
    },
  };
  return { event, sessionId: room.sessionId };
}

test("a device the rust-sdk dehydrated is rehydrated by Keyroom, with working one-time and fallback keys", async () => {
  const wasm = await loadVodozemac();
  const machine = await wasm.OlmMachine.initialize(new wasm.UserId("@alice:x"), new wasm.DeviceId("ALICE"));
  await machine.bootstrapCrossSigning(true); // the rust-sdk signs dehydrated devices with it
  const keyBytes = randomBytes(32);
  const key = wasm.DehydratedDeviceKey.createKeyFromArray(keyBytes);
  const device = await machine.dehydratedDevices().create();
  const request = await device.keysForUpload("Dehydrated device", key);
  const body = JSON.parse(request.body) as UploadBody;
  assert.equal(body.device_data.algorithm, DEHYDRATED_DEVICE_ALGORITHM);

  const pickle = { ciphertext: body.device_data.device_pickle, nonce: body.device_data.nonce };
  const account = fromDehydratedDevice(pickle, keyBytes);
  assert.equal(account.identityKeys.curve25519, body.device_keys.keys[`curve25519:${body.device_id}`]);
  assert.equal(account.identityKeys.ed25519, body.device_keys.keys[`ed25519:${body.device_id}`]);

  const oneTimeKeys = Object.values(body.one_time_keys).map((k) => k.key);
  const fallbackKeys = Object.values(body.fallback_keys).map((k) => k.key);
  assert.ok(oneTimeKeys.length > 0 && fallbackKeys.length === 1);
  for (const target of [oneTimeKeys[0], oneTimeKeys.at(-1), fallbackKeys[0]]) {
    const sender = Account.create();
    const session = sender.createOutboundSession(account.identityKeys.curve25519, target ?? "");
    const message = session.encrypt(`to ${target}`);
    const { plaintext } = account.createInboundSession(sender.identityKeys.curve25519, message);
    assert.equal(utf8Decode(plaintext), `to ${target}`);
  }

  assert.throws(
    () => fromDehydratedDevice(pickle, randomBytes(32)),
    (e: unknown) => e instanceof OlmError && e.code === "DECRYPTION_FAILED",
  );
  machine.free();
});

test("a device Keyroom dehydrated is rehydrated by the rust-sdk and imports a room key sent to it", async () => {
  const wasm = await loadVodozemac();
  const dehydrated = Account.create();
  dehydrated.generateOneTimeKeys(5);
  dehydrated.generateFallbackKey();
  const [oneTimeKey] = Object.values(dehydrated.oneTimeKeys());
  dehydrated.markKeysAsPublished();
  const keyBytes = randomBytes(32);
  const pickle = toDehydratedDevice(dehydrated, keyBytes);
  const deviceData = {
    algorithm: DEHYDRATED_DEVICE_ALGORITHM,
    device_pickle: pickle.ciphertext,
    nonce: pickle.nonce,
  };

  // Round trip through Keyroom itself first.
  assert.deepEqual(fromDehydratedDevice(pickle, keyBytes).identityKeys, dehydrated.identityKeys);

  const machine = await wasm.OlmMachine.initialize(new wasm.UserId("@alice:x"), new wasm.DeviceId("ALICE"));
  const rehydrated = await machine
    .dehydratedDevices()
    .rehydrate(
      wasm.DehydratedDeviceKey.createKeyFromArray(keyBytes),
      new wasm.DeviceId("DEHYDRATED"),
      JSON.stringify(deviceData),
    );

  // Bob sends the dehydrated device a room key over Olm, to one of its one-time keys.
  const { event, sessionId } = roomKeyTo(dehydrated.identityKeys, oneTimeKey ?? "", "!room:x");
  const imported = await rehydrated.receiveEvents(JSON.stringify([event]));
  assert.deepEqual(
    imported.map((k) => [k.roomId.toString(), k.sessionId]),
    [["!room:x", sessionId]],
  );
  machine.free();
});

test("the upload bodies agree: Keyroom's opens in the rust-sdk as the device it announces, the rust-sdk's through Keyroom's GET parser", async () => {
  const wasm = await loadVodozemac();
  const machine = await wasm.OlmMachine.initialize(new wasm.UserId("@alice:x"), new wasm.DeviceId("ALICE"));
  await machine.bootstrapCrossSigning(true);
  const keyBytes = randomBytes(32);
  const key = wasm.DehydratedDeviceKey.createKeyFromArray(keyBytes);

  const theirs = JSON.parse(
    (await (await machine.dehydratedDevices().create()).keysForUpload("d", key)).body,
  ) as UploadBody;
  const ours = createDehydratedDevice({ userId: "@alice:x", key: keyBytes, displayName: "d" });
  assert.deepEqual(Object.keys(ours.body).sort(), Object.keys(theirs).sort());
  assert.deepEqual(Object.keys(ours.body.device_keys).sort(), Object.keys(theirs.device_keys).sort());

  const parsed = parseDehydratedDevice({ device_id: theirs.device_id, device_data: theirs.device_data });
  const account = rehydrateDevice(parsed.deviceData, keyBytes);
  assert.equal(account.identityKeys.curve25519, theirs.device_keys.keys[`curve25519:${theirs.device_id}`]);

  // The rust-sdk rehydrates ours, and it is the device our upload announced: room keys sent to the
  // identity keys and to a one-time key and the fallback key of that upload reach it.
  const rehydrated = await machine
    .dehydratedDevices()
    .rehydrate(key, new wasm.DeviceId(ours.deviceId), JSON.stringify(ours.body.device_data));
  const uploaded = ours.body.device_keys as unknown as UploadBody["device_keys"];
  const identity = {
    curve25519: uploaded.keys[`curve25519:${ours.deviceId}`] ?? "",
    ed25519: uploaded.keys[`ed25519:${ours.deviceId}`] ?? "",
  };
  const [oneTimeKey] = Object.values(ours.body.one_time_keys).map((k) => k.key);
  const [fallbackKey] = Object.values(ours.body.fallback_keys).map((k) => k.key);
  assert.ok(oneTimeKey && fallbackKey);
  const toOneTime = roomKeyTo(identity, oneTimeKey, "!one-time:x");
  const toFallback = roomKeyTo(identity, fallbackKey, "!fallback:x");
  const imported = await rehydrated.receiveEvents(JSON.stringify([toOneTime.event, toFallback.event]));
  assert.deepEqual(imported.map((k) => [k.roomId.toString(), k.sessionId]).sort(), [
    ["!fallback:x", toFallback.sessionId],
    ["!one-time:x", toOneTime.sessionId],
  ]);
  machine.free();
});
