// In-room verification when the verifier's room only shares keys with verified devices
// (`shareWith: "verified"`) or refuses unknown devices (`verifyDevices: true`): the flow's events
// are encrypted with a Megolm session of their own, shared with the partner's devices whatever
// the room's policy, so the SAS completes; the room's messages sent meanwhile stay unreadable to
// the still unverified partner. See docs/verification.md ("In-room verification and strict
// room-key settings").
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MatrixClient, RoomEvent, VerificationRequest } from "../../src/client/index.ts";
import {
  compareAndConfirm,
  devServerFixture,
  fixtureUser,
  settledUntil,
  type TestClient,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-verify-strict-");

/**
 * The first of: an incoming verification request, or an event from `from` that could not be
 * decrypted (the request itself, its key withheld). Fails at once on the second, rather than
 * waiting for a request that cannot come.
 */
function requestOrFailure(t: TestClient, from: string): Promise<VerificationRequest> {
  return new Promise((resolve, reject) => {
    const offs: (() => void)[] = [];
    const done = () => {
      for (const off of offs) off();
    };
    offs.push(
      t.client.on("verification.request", (r) => {
        done();
        resolve(r);
      }),
    );
    const failed = (ev: RoomEvent) => {
      if (ev.sender !== from || ev.type !== "m.room.encrypted") return;
      done();
      reject(new Error(`${t.name} could not decrypt ${from}'s event ${ev.eventId}: no verification request`));
    };
    offs.push(t.client.on("room.event", (_room, ev) => failed(ev)));
    offs.push(t.client.on("room.undecryptable", (_room, ev) => failed(ev)));
  });
}

/** The emitted event with this ID, once `t`'s sync brought it (the last emission wins). */
async function received(t: TestClient, eventId: string): Promise<RoomEvent> {
  const last = () => [...t.events, ...t.late].filter((e) => e.eventId === eventId).at(-1);
  await settledUntil(t.client, () => last() !== undefined);
  return last() as RoomEvent;
}

/** `from` asks `to` (another user) to verify, in their DM `roomId`; `to` accepts; both ready. */
async function readyInRoom(
  from: TestClient,
  to: TestClient,
  roomId: string,
): Promise<{ outgoing: VerificationRequest; request: VerificationRequest }> {
  const incoming = requestOrFailure(to, from.client.userId);
  const outgoing = await from.client.requestVerification(to.client.userId);
  assert.equal(outgoing.roomId, roomId);
  const request = await incoming;
  await request.accept();
  await outgoing.waitFor((s) => s.phase === "ready");
  return { outgoing, request };
}

async function pair(
  strict: (client: MatrixClient, roomId: string) => Promise<void>,
): Promise<{ bob: TestClient; alice: TestClient; roomId: string }> {
  const alice = await fixtureUser(fx, "sa");
  const bob = await fixtureUser(fx, "sb");
  await alice.client.bootstrapCrossSigning();
  await bob.client.bootstrapCrossSigning();
  const roomId = await bob.client.createDirectRoom(alice.client.userId, { encrypted: true });
  await alice.client.joinRoom(roomId);
  await bob.client.syncOnce({ timeoutMs: 0 });
  await strict(bob.client, roomId);
  await alice.client.startSync();
  await bob.client.startSync();
  return { alice, bob, roomId };
}

describe("in-room verification under strict room-key settings (devserver)", () => {
  it('shareWith "verified": SAS completes; room messages sent meanwhile stay unreadable to the partner', async () => {
    const { alice, bob, roomId } = await pair((c, r) =>
      c.setRoomTrustRequirements(r, { shareWith: "verified" }),
    );
    try {
      const { outgoing, request } = await readyInRoom(bob, alice, roomId);

      // A room message while the flow runs: its key goes to verified devices only.
      const secret = await bob.client.sendText(roomId, "not for unverified devices");
      const seen = await received(alice, secret);
      assert.equal(seen.type, "m.room.encrypted", "the unverified partner read a room message");

      await outgoing.startSas();
      await compareAndConfirm(outgoing, request);
      assert.equal((await bob.client.getUserIdentity(alice.client.userId))?.verified, true);

      // Verified now: the room's own key reaches her.
      const after = await bob.client.sendText(roomId, "now you may read this");
      const read = await received(alice, after);
      assert.equal(read.content.body, "now you may read this");
      // The message sent during the flow stays unreadable (it was never hers to read).
      assert.equal(
        [...alice.events, ...alice.late].some((e) => e.eventId === secret && e.type !== "m.room.encrypted"),
        false,
      );
    } finally {
      await alice.client.stopSync();
      await bob.client.stopSync();
    }
  });

  it("verifyDevices: the request goes out to the partner's unseen device and SAS completes", async () => {
    const { alice, bob, roomId } = await pair((c, r) => c.setRoomVerifyDevices(r, true));
    try {
      // The room's own sends refuse her device while its trust is unset.
      await assert.rejects(bob.client.sendText(roomId, "refused"), { name: "UnknownDevicesError" });
      const { outgoing, request } = await readyInRoom(bob, alice, roomId);
      await request.startSas();
      await compareAndConfirm(outgoing, request);
      assert.equal((await bob.client.getUserIdentity(alice.client.userId))?.verified, true);
    } finally {
      await alice.client.stopSync();
      await bob.client.stopSync();
    }
  });
});
