// Steps most interop tests repeat, written once: a shared encrypted room, and a message that must
// arrive encrypted and be decrypted by the receiver's own crypto.
import assert from "node:assert/strict";
import type { Peer, PeerMessage } from "./types.ts";

/** `creator` makes an encrypted room and invites `members`, who join; resolves once everyone sees everyone joined. */
export async function encryptedRoom(creator: Peer, ...members: Peer[]): Promise<string> {
  const roomId = await creator.createRoom({ encrypted: true, invite: members.map((m) => m.userId) });
  for (const m of members) {
    await m.waitForMembership(roomId, m.userId, "invite");
    await m.join(roomId);
  }
  for (const viewer of [creator, ...members]) {
    for (const m of members) await viewer.waitForMembership(roomId, m.userId, "join");
  }
  return roomId;
}

/**
 * `from` sends `body`; `to` must receive that event from `from`, sent as `m.room.encrypted` and
 * decrypted by its own crypto. Returns what `to` saw (with the Megolm `sessionId`).
 */
export async function sendAndDecrypt(
  from: Peer,
  to: Peer,
  roomId: string,
  body: string,
): Promise<PeerMessage> {
  const eventId = await from.sendText(roomId, body);
  const got = await to.waitForMessage(roomId, (m) => m.eventId === eventId && m.decrypted);
  assert.equal(got.sender, from.userId);
  assert.equal(got.encrypted, true, "arrived as m.room.encrypted");
  assert.equal(got.type, "m.room.message");
  assert.equal(got.body, body);
  return got;
}
