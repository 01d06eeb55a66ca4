import { InboundGroupSession, OutboundGroupSession } from "../src/crypto/megolm/index.ts";
import { farMessage } from "./far-message.ts";
import { measure } from "./harness.ts";
import { type CryptoOp, MESSAGE_200 } from "./ops.ts";

export function megolmRates(): Partial<Record<CryptoOp, number>> {
  const outbound = OutboundGroupSession.create();
  const inbound = InboundGroupSession.fromSessionKey(outbound.sessionKey());
  const encrypt = measure("megolm encrypt", () => outbound.encrypt(MESSAGE_200), { batch: 200 }).opsPerSec;

  // Decrypt a window of consecutive messages, as a client catching up on a room does.
  const messages = Array.from({ length: 1024 }, () => outbound.encrypt(MESSAGE_200));
  let i = 0;
  const decrypt = measure("megolm decrypt", () => inbound.decrypt(messages[i++ & 1023]!), {
    batch: 200,
  }).opsPerSec;

  const far = farMessage();
  const decryptFar = measure(
    "megolm far",
    () => InboundGroupSession.fromSessionKey(far.sessionKey).decrypt(far.message),
    { batch: 20 },
  ).opsPerSec;
  return { megolmEncrypt: encrypt, megolmDecrypt: decrypt, megolmDecryptFar: decryptFar };
}
