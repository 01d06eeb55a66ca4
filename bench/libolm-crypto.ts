// libolm (the C reference implementation, as wasm from npm @towns-protocol/olm) on the same
// operations as bench/keyroom-crypto.ts. Sessions are freed as a libolm user must.
import type { loadLibolm } from "../test/support/libolm.ts";
import { farMessage } from "./far-message.ts";
import { MESSAGE_200, type OpSet } from "./ops.ts";

type Olm = NonNullable<Awaited<ReturnType<typeof loadLibolm>>>;

export function libolmOps(olm: Olm): OpSet {
  const bob = new olm.Account();
  bob.create();
  bob.generate_fallback_key();
  const bobIdentity = (JSON.parse(bob.identity_keys()) as { curve25519: string }).curve25519;
  const bobFallback = Object.values(
    (JSON.parse(bob.unpublished_fallback_key()) as { curve25519: Record<string, string> }).curve25519,
  )[0] as string;
  const alice = new olm.Account();
  alice.create();
  const aliceIdentity = (JSON.parse(alice.identity_keys()) as { curve25519: string }).curve25519;
  const outboundMessage = () => {
    const session = new olm.Session();
    session.create_outbound(alice, bobIdentity, bobFallback);
    const message = session.encrypt(MESSAGE_200);
    session.free();
    return message;
  };
  const preKeyMessages = Array.from({ length: 256 }, outboundMessage);
  let next = 0;

  const outbound = new olm.OutboundGroupSession();
  outbound.create();
  const sessionKey = outbound.session_key();
  const encryptWith = new olm.OutboundGroupSession();
  encryptWith.create();
  let inbound = new olm.InboundGroupSession();
  inbound.create(sessionKey);
  const messages = Array.from({ length: 1024 }, () => outbound.encrypt(MESSAGE_200));
  let i = 0;
  const far = farMessage();
  return {
    accountCreate: () => {
      const account = new olm.Account();
      account.create();
      account.generate_one_time_keys(50);
      account.free();
    },
    olmOutbound: outboundMessage,
    olmInbound: () => {
      const message = preKeyMessages[next++ & 255] as { type: 0 | 1; body: string };
      const session = new olm.Session();
      session.create_inbound_from(bob, aliceIdentity, message.body);
      const plaintext = session.decrypt(message.type, message.body);
      session.free();
      return plaintext;
    },
    megolmEncrypt: () => encryptWith.encrypt(MESSAGE_200),
    // As in keyroom-megolm.ts: consecutive messages, a new session every 1024.
    megolmDecrypt: () => {
      if ((i & 1023) === 0) {
        inbound.free();
        inbound = new olm.InboundGroupSession();
        inbound.create(sessionKey);
      }
      return inbound.decrypt(messages[i++ & 1023] as string);
    },
    megolmDecryptFar: () => {
      const session = new olm.InboundGroupSession();
      session.create(far.sessionKey);
      const result = session.decrypt(far.message);
      session.free();
      return result;
    },
  };
}
