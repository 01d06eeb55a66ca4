// errorOnVerifiedUserProblems (matrix-rust-sdk's CollectStrategy::ErrorOnVerifiedUserProblem,
// matrix-js-sdk's errorOnVerifiedUserProblems): a share refuses, with a typed error naming them,
// while a user we verified changed identity since, or has a device their identity did not sign.
// Without it the key went to such devices (or was withheld) silently.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VerifiedUserProblemError } from "../errors.ts";
import { refetchDevices } from "../test-support/cross-signed-devices.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";
const ROOM = "!room:example.org";
const STRICT = { errorOnVerifiedUserProblems: true } as const;

/** Alice and Bob cross-signed, Bob tracking Alice and having verified her. */
async function bobVerifiedAlice(
  options: { errorOnVerifiedUserProblems?: boolean } = STRICT,
): Promise<{ hs: FakeHomeserver; alice: TestClient; bob: TestClient }> {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE1" });
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "BOB1", ...options });
  await alice.bootstrapCrossSigning();
  await bob.bootstrapCrossSigning();
  await bob.machine.updateTrackedUsers([ALICE]);
  await refetchDevices([bob], ALICE);
  await bob.machine.markUserVerified(ALICE);
  await bob.flush();
  return { hs, alice, bob };
}

const roomKeysTo = (hs: FakeHomeserver, userId: string): number =>
  hs.sentToDevice.filter((m) => m.eventType === "m.room.encrypted" && m.to.startsWith(`${userId}|`)).length;

async function problem(send: Promise<unknown>): Promise<VerifiedUserProblemError> {
  const error = await send.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof VerifiedUserProblemError, `expected VerifiedUserProblemError, got ${error}`);
  assert.equal(error.code, "VERIFIED_USER_PROBLEM");
  return error;
}

describe("errorOnVerifiedUserProblems", () => {
  it("a verified user whose identity changed fails the share, naming them; after withdrawVerification it goes", async () => {
    const { hs, alice, bob } = await bobVerifiedAlice();
    await alice.bootstrapCrossSigning(true); // a new identity, which signs ALICE1
    await bob.sync();
    assert.equal((await bob.machine.getUserIdentity(ALICE))?.state, "violation");

    const before = roomKeysTo(hs, ALICE);
    const error = await problem(bob.sendMessage(ROOM, joined(ALICE, BOB), "not yet"));
    assert.deepEqual(error.changedIdentity, [ALICE]);
    assert.deepEqual(error.unsignedDevices, []);
    assert.equal(roomKeysTo(hs, ALICE), before, "no room key went to the changed identity's devices");
    // The same through the one-step send plan the client uses.
    const planned = await problem(
      bob.machine.prepareRoomEvent(ROOM, "m.room.message", { body: "x" }, { members: joined(ALICE, BOB) }),
    );
    assert.deepEqual(planned.changedIdentity, [ALICE]);

    await bob.machine.withdrawVerification(ALICE);
    const sent = await bob.sendMessage(ROOM, joined(ALICE, BOB), "after withdrawing");
    await alice.sync();
    assert.equal((await alice.machine.decryptRoomEvent(sent, ROOM)).content.body, "after withdrawing");
  });

  it("accepting the new identity clears it too", async () => {
    const { alice, bob } = await bobVerifiedAlice();
    await alice.bootstrapCrossSigning(true);
    await bob.sync();
    await problem(bob.sendMessage(ROOM, joined(ALICE, BOB), "not yet"));
    await bob.machine.acceptIdentityChange(ALICE);
    const sent = await bob.sendMessage(ROOM, joined(ALICE, BOB), "after accepting");
    await alice.sync();
    assert.equal((await alice.machine.decryptRoomEvent(sent, ROOM)).content.body, "after accepting");
  });

  it("a device of a verified user their identity did not sign fails the share until marked", async () => {
    const { hs, alice, bob } = await bobVerifiedAlice();
    const alice2 = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE2" }); // not cross-signed
    const alice3 = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE3" });
    await refetchDevices([bob], ALICE);

    const before = roomKeysTo(hs, ALICE);
    const error = await problem(bob.sendMessage(ROOM, joined(ALICE, BOB), "not yet"));
    assert.deepEqual(error.changedIdentity, []);
    assert.deepEqual(
      error.unsignedDevices.map((d) => `${d.userId}|${d.deviceId}`).sort(),
      [`${ALICE}|ALICE2`, `${ALICE}|ALICE3`],
      "ALICE1, which her identity signed, is not named",
    );
    const listed = (await bob.machine.getUserDevices(ALICE)).find((d) => d.deviceId === "ALICE2");
    assert.equal(error.unsignedDevices.find((d) => d.deviceId === "ALICE2")?.ed25519, listed?.ed25519);
    assert.equal(roomKeysTo(hs, ALICE), before, "no room key went to any of her devices");

    // Bob decides about each: one still gets keys, the other never does.
    await bob.machine.setDeviceTrust(ALICE, "ALICE2", "ignored");
    await bob.machine.setDeviceTrust(ALICE, "ALICE3", "blacklisted");
    const sent = await bob.sendMessage(ROOM, joined(ALICE, BOB), "after deciding");
    for (const device of [alice, alice2]) {
      await device.sync();
      assert.equal((await device.machine.decryptRoomEvent(sent, ROOM)).content.body, "after deciding");
    }
    assert.ok(
      hs.sentToDevice.some((m) => m.eventType === "m.room_key.withheld" && m.to === `${ALICE}|ALICE3`),
    );
    await alice3.sync();
    await assert.rejects(alice3.machine.decryptRoomEvent(sent, ROOM), { code: "WITHHELD" });
  });

  it("our own device our identity did not sign counts too", async () => {
    const { hs, alice, bob } = await bobVerifiedAlice();
    await TestClient.create(hs, { userId: BOB, deviceId: "BOB2" });
    await refetchDevices([bob], BOB);
    const error = await problem(bob.sendMessage(ROOM, joined(ALICE, BOB), "not yet"));
    assert.deepEqual(
      error.unsignedDevices.map((d) => `${d.userId}|${d.deviceId}`),
      [`${BOB}|BOB2`],
    );
    await bob.machine.setDeviceTrust(BOB, "BOB2", "verified");
    const sent = await bob.sendMessage(ROOM, joined(ALICE, BOB), "after verifying it");
    await alice.sync();
    assert.equal((await alice.machine.decryptRoomEvent(sent, ROOM)).content.body, "after verifying it");
  });

  it("users we never verified are unaffected: a changed identity, unsigned devices", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE1" });
    const bob = await TestClient.create(hs, { userId: BOB, deviceId: "BOB1", ...STRICT });
    await alice.bootstrapCrossSigning();
    await bob.machine.updateTrackedUsers([ALICE]);
    await refetchDevices([bob], ALICE);
    await alice.bootstrapCrossSigning(true); // changed, not a violation: never verified
    const alice2 = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE2" });
    await refetchDevices([bob], ALICE);
    assert.equal((await bob.machine.getUserIdentity(ALICE))?.state, "changed");

    const sent = await bob.sendMessage(ROOM, joined(ALICE, BOB), "to everyone");
    for (const device of [alice, alice2]) {
      await device.sync();
      assert.equal((await device.machine.decryptRoomEvent(sent, ROOM)).content.body, "to everyone");
    }
  });

  it("is off by default, and a room's setting overrides the machine-wide one (kept in the store)", async () => {
    const { hs, alice, bob } = await bobVerifiedAlice({});
    await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE2" });
    await refetchDevices([bob], ALICE);
    // Off: the key goes to the unsigned device as to any other.
    const quiet = await bob.sendMessage(ROOM, joined(ALICE, BOB), "to every device");
    await alice.sync();
    assert.equal((await alice.machine.decryptRoomEvent(quiet, ROOM)).content.body, "to every device");

    await bob.machine.setRoomSettings(ROOM, STRICT);
    await bob.restart();
    assert.equal((await bob.machine.getRoomSettings(ROOM))?.errorOnVerifiedUserProblems, true);
    await problem(bob.sendMessage(ROOM, joined(ALICE, BOB), "refused in this room"));
    // Another room follows the machine-wide default (off).
    await bob.sendMessage("!other:example.org", joined(ALICE, BOB), "elsewhere");
  });
});
