// Measures libolm (the C reference implementation, as wasm from npm @towns-protocol/olm) on the same
// operations as bench/keyroom-crypto.ts. Prints one JSON report on stdout.
import { loadLibolm } from "../test/support/libolm.ts";
import { farMessage } from "./far-message.ts";
import { measure } from "./harness.ts";
import { type CryptoBenchReport, type CryptoOp, MESSAGE_200 } from "./ops.ts";

const olm = await loadLibolm();
if (!olm) throw new Error("libolm could not be loaded");
const rates: Partial<Record<CryptoOp, number>> = {};

rates.accountCreate = measure(
  "account",
  () => {
    const account = new olm.Account();
    account.create();
    account.generate_one_time_keys(50);
    account.free();
  },
  { batch: 5 },
).opsPerSec;

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

rates.olmOutbound = measure("outbound", () => {
  const session = new olm.Session();
  session.create_outbound(alice, bobIdentity, bobFallback);
  const message = session.encrypt(MESSAGE_200);
  session.free();
  return message;
}).opsPerSec;

const preKeyMessages = Array.from({ length: 256 }, () => {
  const session = new olm.Session();
  session.create_outbound(alice, bobIdentity, bobFallback);
  const message = session.encrypt(MESSAGE_200);
  session.free();
  return message;
});
let next = 0;
rates.olmInbound = measure("inbound", () => {
  const message = preKeyMessages[next++ & 255]!;
  const session = new olm.Session();
  session.create_inbound_from(bob, aliceIdentity, message.body);
  const plaintext = session.decrypt(message.type, message.body);
  session.free();
  return plaintext;
}).opsPerSec;

const outbound = new olm.OutboundGroupSession();
outbound.create();
const sessionKey = outbound.session_key();
let inbound = new olm.InboundGroupSession();
inbound.create(sessionKey);
rates.megolmEncrypt = measure("megolm encrypt", () => outbound.encrypt(MESSAGE_200), {
  batch: 200,
}).opsPerSec;
const messages = Array.from({ length: 1024 }, () => outbound.encrypt(MESSAGE_200));
let i = 0;
// As in keyroom-megolm.ts: consecutive messages, a new session every 1024.
rates.megolmDecrypt = measure(
  "megolm decrypt",
  () => {
    if ((i & 1023) === 0) {
      inbound.free();
      inbound = new olm.InboundGroupSession();
      inbound.create(sessionKey);
    }
    return inbound.decrypt(messages[i++ & 1023]!);
  },
  { batch: 256 },
).opsPerSec;

const far = farMessage();
rates.megolmDecryptFar = measure(
  "megolm far",
  () => {
    const session = new olm.InboundGroupSession();
    session.create(far.sessionKey);
    const result = session.decrypt(far.message);
    session.free();
    return result;
  },
  { batch: 20 },
).opsPerSec;

const report: CryptoBenchReport = { implementation: "libolm 3.2 (wasm)", rates };
console.log(JSON.stringify(report));
