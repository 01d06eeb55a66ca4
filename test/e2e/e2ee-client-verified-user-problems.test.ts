// errorOnVerifiedUserProblems through the client and the devserver: a send into an encrypted room
// fails at once with VerifiedUserProblemError (not retried by the send queue) while a user we
// verified changed identity or has a device their identity did not sign; the app decides
// (withdraws the verification, ignores the device) and the next send goes.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  isTransientError,
  type Logger,
  MatrixClient,
  VerifiedUserProblemError,
} from "../../src/client/index.ts";
import {
  devServerFixture,
  encryptedClient,
  eventById,
  fixtureDevice,
  fixtureUser,
  sharedRoom,
  syncAll,
  type TestClient,
  uniq,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-problems-");

/** A user whose client logs what its send queue says (to see whether a send was retried). */
async function loggedUser(prefix: string, warnings: string[]): Promise<TestClient> {
  const name = uniq(prefix);
  const storeDir = join(fx.dir, name);
  const note = (_obj?: unknown, msg?: string) => void (msg !== undefined && warnings.push(msg));
  const logger: Logger = { debug: () => {}, info: () => {}, warn: note, error: note };
  const client = new MatrixClient({
    homeserverUrl: fx.hs.baseUrl,
    syncTimeoutMs: 0,
    syncFilter: { room: { timeline: { limit: 100 } } },
    encryption: { store: { directory: storeDir }, errorOnVerifiedUserProblems: true },
    logger,
  });
  fx.open.push(client);
  await client.register({ username: name, password: "pw" });
  return watch(client, name, storeDir);
}

async function refused(send: Promise<unknown>): Promise<VerifiedUserProblemError> {
  const error = await send.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof VerifiedUserProblemError, `expected VerifiedUserProblemError, got ${error}`);
  assert.equal(error.code, "VERIFIED_USER_PROBLEM");
  assert.equal(isTransientError(error), false);
  return error;
}

describe("errorOnVerifiedUserProblems (devserver)", () => {
  it("a verified user's new identity, then an unsigned device, fail the send until the app decides", async () => {
    const warnings: string[] = [];
    const bob = await loggedUser("pb", warnings);
    const alice = await fixtureUser(fx, "pa");
    await alice.client.bootstrapCrossSigning();
    await bob.client.bootstrapCrossSigning();
    const roomId = await sharedRoom(bob, [alice]);
    await bob.client.verifyUser(alice.client.userId);
    const first = await bob.client.sendText(roomId, "to a verified user");
    await syncAll(alice);
    assert.equal(eventById(alice, first).content.body, "to a verified user");

    // Alice's identity is replaced (by her, or by her server): a verification violation for Bob.
    await alice.client.bootstrapCrossSigning({ reset: true, auth: { password: "pw" } });
    await syncAll(bob);
    assert.equal((await bob.client.getUserIdentity(alice.client.userId))?.state, "violation");
    const changed = await refused(bob.client.sendText(roomId, "not to a changed identity"));
    assert.deepEqual(changed.changedIdentity, [alice.client.userId]);
    assert.deepEqual(changed.unsignedDevices, []);
    assert.deepEqual(warnings, [], "the send queue did not retry it");

    await bob.client.withdrawVerification(alice.client.userId);
    const after = await bob.client.sendText(roomId, "after withdrawing");
    await syncAll(alice);
    assert.equal(eventById(alice, after).content.body, "after withdrawing");

    // Verified again; then a device appears that her identity did not sign.
    await bob.client.verifyUser(alice.client.userId);
    const alice2 = await fixtureDevice(fx, alice, "2");
    await syncAll(alice, bob, alice2);
    const unsigned = await refused(bob.client.sendText(roomId, "not to an unsigned device"));
    assert.deepEqual(unsigned.changedIdentity, []);
    assert.deepEqual(
      unsigned.unsignedDevices.map((d) => [d.userId, d.deviceId]),
      [[alice.client.userId, alice2.client.deviceId]],
    );
    assert.equal(unsigned.unsignedDevices[0]?.ed25519, alice2.client.getFingerprint());
    assert.deepEqual(warnings, []);

    await bob.client.ignoreDevice(alice.client.userId, alice2.client.deviceId);
    const last = await bob.client.sendText(roomId, "after ignoring it");
    await syncAll(alice, alice2);
    assert.equal(eventById(alice, last).content.body, "after ignoring it");
    assert.equal(eventById(alice2, last).content.body, "after ignoring it");
  });

  it("per room, with setRoomTrustRequirements, kept across a restart", async () => {
    const alice = await fixtureUser(fx, "pc");
    const bob = await fixtureUser(fx, "pd");
    await alice.client.bootstrapCrossSigning();
    await bob.client.bootstrapCrossSigning();
    const roomId = await sharedRoom(bob, [alice]);
    await bob.client.verifyUser(alice.client.userId);
    const alice2 = await fixtureDevice(fx, alice, "2");
    await syncAll(alice, bob, alice2);
    // Off by default: the unsigned device gets the key like any other.
    const quiet = await bob.client.sendText(roomId, "to every device");
    await syncAll(alice2);
    assert.equal(eventById(alice2, quiet).content.body, "to every device");

    await bob.client.setRoomTrustRequirements(roomId, { errorOnVerifiedUserProblems: true });
    const session = await bob.client.store.loadSession();
    assert.ok(session);
    await bob.client.close();
    const again = encryptedClient(fx.hs, bob.storeDir);
    fx.open.push(again);
    await again.restore(session);
    await again.syncOnce({ timeoutMs: 0 });
    const error = await refused(again.sendText(roomId, "refused in this room"));
    assert.deepEqual(
      error.unsignedDevices.map((d) => d.deviceId),
      [alice2.client.deviceId],
    );
  });
});
