// Room-key export entries (as `importRoomKeys` takes them) of a session a test holds itself, in the
// form several import tests build them: a made-up sender key and signing key.
import { InboundGroupSession, type OutboundGroupSession } from "../../crypto/megolm/index.ts";

/**
 * Export entries of `session` in `roomId`, by the first index they open (0 unless given). Built from
 * the session's key as it is now: take this before encrypting with the session, or the earlier
 * indexes are out of reach.
 */
export function exportsOf(session: OutboundGroupSession, roomId = "!r:x") {
  const sessionKey = session.sessionKey();
  return (index = 0) => ({
    algorithm: "m.megolm.v1.aes-sha2",
    room_id: roomId,
    sender_key: "c2VuZGVyLWtleQ",
    session_id: session.sessionId,
    session_key: InboundGroupSession.fromSessionKey(sessionKey).exportAt(index),
    sender_claimed_keys: { ed25519: "ZWQ" },
    forwarding_curve25519_key_chain: [],
  });
}
