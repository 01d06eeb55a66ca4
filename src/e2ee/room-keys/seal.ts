/**
 * Encrypting one room event with an outbound Megolm session into `m.room.encrypted` content, shared
 * by the room's own sessions (outbound.ts) and the in-room verification ones
 * (verification-sessions.ts): the plaintext's JSON, our own echo (so we read the event back), and
 * the content's fields.
 */
import { InboundGroupSession, type OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { wipe } from "../../crypto/primitives/index.ts";
import type { OwnEchoes } from "../decryption/own-echoes.ts";
import { MEGOLM_ALGORITHM } from "../devices/device.ts";
import { E2eeError } from "../errors.ts";
import type { OwnDevice } from "../identity/own-device.ts";
import type { InboundSessions } from "./inbound.ts";

/** The Megolm plaintext of a room event; `BAD_ARGUMENT` for content JSON cannot carry. */
export function roomEventPlaintext(roomId: string, type: string, content: Record<string, unknown>): string {
  try {
    return JSON.stringify({ type, content, room_id: roomId });
  } catch {
    throw new E2eeError("BAD_ARGUMENT", "the event content is not serializable as JSON");
  }
}

/** Who we are in the content: our Curve25519 key and device ID. */
export interface SealIdentity {
  readonly senderKey: string;
  readonly deviceId: string;
}

/**
 * Encrypts `plaintext` (from `roomEventPlaintext`) at the session's next index and returns the
 * encrypted content. `m.relates_to` stays in the clear so servers can aggregate relations (spec
 * "Mixing encrypted and plaintext content").
 */
export function sealRoomEvent(
  session: OutboundGroupSession,
  echoes: OwnEchoes,
  roomId: string,
  plaintext: string,
  content: Record<string, unknown>,
  { senderKey, deviceId }: SealIdentity,
): Record<string, unknown> {
  const messageIndex = session.messageIndex;
  const ratchet = session.ratchetCopy();
  let ciphertext: string;
  try {
    ciphertext = session.encrypt(plaintext);
  } catch (e) {
    wipe(ratchet);
    throw e;
  }
  const sessionId = session.sessionId;
  echoes.add({
    roomId,
    algorithm: MEGOLM_ALGORITHM,
    senderKey,
    sessionId,
    deviceId,
    ciphertext,
    plaintext,
    messageIndex,
    ratchet,
  });
  const out: Record<string, unknown> = {
    algorithm: MEGOLM_ALGORITHM,
    sender_key: senderKey,
    ciphertext,
    session_id: sessionId,
    device_id: deviceId,
  };
  if (content["m.relates_to"] !== undefined) out["m.relates_to"] = content["m.relates_to"];
  return out;
}

/** Stores our own inbound copy of a new outbound session, so we read what we send (after a restart too). */
export async function addOwnInboundCopy(
  inbound: InboundSessions,
  own: OwnDevice,
  roomId: string,
  session: OutboundGroupSession,
  sharedHistory: boolean,
): Promise<void> {
  const ours = own.identityKeys;
  await inbound.add(
    {
      roomId,
      senderKey: ours.curve25519,
      senderClaimedEd25519: ours.ed25519,
      forwarded: false,
      imported: false,
      forwardingChain: [],
      ...(sharedHistory ? { sharedHistory: true } : {}),
    },
    InboundGroupSession.fromSessionKey(session.sessionKey()),
  );
}
