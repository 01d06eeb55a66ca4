// The README's first example: an Olm session between two accounts and a Megolm room session.
import { Account, InboundGroupSession, OutboundGroupSession, primitives } from "../src/crypto/index.ts";

export function run(): string[] {
  const alice = Account.create();
  const bob = Account.create();
  bob.generateOneTimeKeys(1);
  const [otk] = Object.values(bob.oneTimeKeys());
  if (otk === undefined) throw new Error("bob has no one-time key");
  const session = alice.createOutboundSession(bob.identityKeys.curve25519, otk);
  const first = session.encrypt("hello");
  const { plaintext } = bob.createInboundSession(alice.identityKeys.curve25519, first);

  const room = OutboundGroupSession.create();
  const inbound = InboundGroupSession.fromSessionKey(room.sessionKey());
  const { plaintext: roomText, messageIndex } = inbound.decrypt(room.encrypt("to everyone"));
  return [primitives.utf8Decode(plaintext), `${primitives.utf8Decode(roomText)} #${messageIndex}`];
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(run().join("\n"));
