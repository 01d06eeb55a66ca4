import { InboundGroupSession, OutboundGroupSession } from "../src/crypto/megolm/index.ts";
import { farMessage } from "./far-message.ts";
import { MESSAGE_200 } from "./ops.ts";

/** Keyroom's Megolm operations, one per call. */
export function keyroomMegolmOps() {
  const outbound = OutboundGroupSession.create();
  const sessionKey = outbound.sessionKey();
  const encryptWith = OutboundGroupSession.create();
  // Decrypt consecutive messages, as a client following a room does. Every 1024 messages the window
  // restarts on a new session, so no row pays for ratcheting back from the first index.
  const messages = Array.from({ length: 1024 }, () => outbound.encrypt(MESSAGE_200));
  let inbound = InboundGroupSession.fromSessionKey(sessionKey);
  let i = 0;
  const far = farMessage();
  return {
    megolmEncrypt: () => encryptWith.encrypt(MESSAGE_200),
    megolmDecrypt: () => {
      if ((i & 1023) === 0) inbound = InboundGroupSession.fromSessionKey(sessionKey);
      return inbound.decrypt(messages[i++ & 1023] as string);
    },
    megolmDecryptFar: () => InboundGroupSession.fromSessionKey(far.sessionKey).decrypt(far.message),
  };
}
