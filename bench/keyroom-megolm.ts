import { InboundGroupSession, OutboundGroupSession } from "../src/crypto/megolm/index.ts";
import { farMessage } from "./far-message.ts";
import { measure } from "./harness.ts";
import { type CryptoOp, MESSAGE_200 } from "./ops.ts";

export function megolmRates(): Partial<Record<CryptoOp, number>> {
  const outbound = OutboundGroupSession.create();
  const sessionKey = outbound.sessionKey();
  const encrypt = measure("megolm encrypt", () => outbound.encrypt(MESSAGE_200), { batch: 200 }).opsPerSec;

  // Decrypt consecutive messages, as a client following a room does. Every 1024 messages the window
  // restarts on a new session, so no row pays for ratcheting back from the first index.
  const messages = Array.from({ length: 1024 }, () => outbound.encrypt(MESSAGE_200));
  let inbound = InboundGroupSession.fromSessionKey(sessionKey);
  let i = 0;
  const decrypt = measure(
    "megolm decrypt",
    () => {
      if ((i & 1023) === 0) inbound = InboundGroupSession.fromSessionKey(sessionKey);
      return inbound.decrypt(messages[i++ & 1023]!);
    },
    { batch: 256 },
  ).opsPerSec;

  const far = farMessage();
  const decryptFar = measure(
    "megolm far",
    () => InboundGroupSession.fromSessionKey(far.sessionKey).decrypt(far.message),
    { batch: 20 },
  ).opsPerSec;
  return { megolmEncrypt: encrypt, megolmDecrypt: decrypt, megolmDecryptFar: decryptFar };
}
