// A session's creator (Alice) and another member, both with Olm sessions to Bob's device B, who
// tracks them: for tests of a member re-sharing a key that is not theirs.
import assert from "node:assert/strict";
import { InboundGroupSession, type OutboundGroupSession } from "../../crypto/megolm/index.ts";
import type { CryptoStore } from "../../store/store.ts";
import { FakeHomeserver, TestClient } from "./fake-homeserver.ts";

export const ROOM = "!room:x";

export async function aliceMemberAndBob(
  member: {
    userId: string;
    deviceId: string;
  },
  /** Opens Bob's store (the same one on every call); a memory store when omitted. */
  bobStore?: () => Promise<CryptoStore>,
): Promise<{ hs: FakeHomeserver; alice: TestClient; bob: TestClient; member: TestClient }> {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" }, bobStore);
  const other = await TestClient.create(hs, member);
  await bob.machine.updateTrackedUsers(["@alice:x", member.userId]);
  await bob.sync();
  for (const c of [alice, other]) {
    await c.machine.updateTrackedUsers(["@bob:x"]);
    await c.flush();
    const claim = await c.machine.getMissingSessions(["@bob:x"]);
    if (claim !== undefined) await c.send(claim);
  }
  return { hs, alice, bob, member: other };
}

/** `from` shares `session` (of `ROOM`) with Bob's device over Olm, as its own. */
export async function shareToBob(from: TestClient, session: OutboundGroupSession): Promise<void> {
  const { request } = await from.machine.encryptToDevice(
    "m.room_key",
    [{ userId: "@bob:x", deviceId: "B" }],
    {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: ROOM,
      session_id: session.sessionId,
      session_key: session.sessionKey(),
    },
  );
  assert.ok(request);
  await from.send(request);
}

/** Bob imports `session` (of `ROOM`) from an export naming `creator` as the one who created it. */
export async function importNaming(bob: TestClient, creator: TestClient, session: OutboundGroupSession) {
  const imported = await bob.machine.importRoomKeys([
    {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: ROOM,
      sender_key: creator.machine.identityKeys.curve25519,
      session_id: session.sessionId,
      session_key: InboundGroupSession.fromSessionKey(session.sessionKey()).exportAt(0),
      sender_claimed_keys: { ed25519: creator.machine.identityKeys.ed25519 },
      forwarding_curve25519_key_chain: [],
    },
  ]);
  assert.equal(imported.imported, 1);
}
