// A Megolm session key at index 0 and a message at index FAR_INDEX of the same session, made without
// encrypting 100 000 messages: the outbound session is re-pickled with the ratchet exported at that index.
import { InboundGroupSession, OutboundGroupSession } from "../src/crypto/megolm/index.ts";
import { decodeBase64, encodeBase64 } from "../src/crypto/primitives/index.ts";
import { FAR_INDEX, MESSAGE_200 } from "./ops.ts";

export function farMessage(): { sessionKey: string; message: string } {
  const outbound = OutboundGroupSession.create();
  const sessionKey = outbound.sessionKey();
  // Exported key: version (1) | index (4) | ratchet (128) | signing public key (32).
  const exported = decodeBase64(InboundGroupSession.fromSessionKey(sessionKey).exportAt(FAR_INDEX));
  const pickle = outbound.toPickle();
  const far = OutboundGroupSession.fromPickle({
    ...pickle,
    ratchet: encodeBase64(exported.subarray(5, 133)),
    messageIndex: FAR_INDEX,
  });
  return { sessionKey, message: far.encrypt(MESSAGE_200) };
}
