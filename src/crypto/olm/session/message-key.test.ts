import assert from "node:assert/strict";
import { createCipheriv, createHmac } from "node:crypto";
import { describe, it } from "node:test";
import { utf8Encode } from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import { decodeMessage, messageLength, writeMessageBody } from "../message/message.ts";
import { decodePreKeyMessage } from "../message/prekey-message.ts";
import { openMessage, sealMessage } from "./message-key.ts";

// M = HMAC(bytes 0..31, 0x01); its HKDF(no salt, M, "OLM_KEYS", 80) computed with Python:
const MESSAGE_KEY = Buffer.from("9b4c8120a4823a95f47cde17a244f4507244ee6e3957d1fab9fa29b44d3829b7", "hex");
const KEYS = Buffer.from(
  "c3df3ba1c92f13c42a2648c0c6145e5684cfe09d10fbcb7a0b5d006d9d53b2fc9321b7142e72e7630e773520f84a5e8c274a34350fbecf38f47e92f7ea738eb00052db0c646f4278c444258f2dee9e43",
  "hex",
);
const AES_KEY = KEYS.subarray(0, 32);
const HMAC_KEY = KEYS.subarray(32, 64);
const IV = KEYS.subarray(64, 80);
const RATCHET_KEY = new Uint8Array(32).fill(0x42);
const isCode = (code: string) => (e: unknown) => e instanceof OlmError && e.code === code;

function expectedMessage(plaintext: Uint8Array, chainIndex: number): Uint8Array {
  const c = createCipheriv("aes-256-cbc", AES_KEY, IV);
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
  const out = new Uint8Array(messageLength(chainIndex, ciphertext.length));
  const macAt = writeMessageBody(out, 0, RATCHET_KEY, chainIndex, ciphertext);
  out.set(createHmac("sha256", HMAC_KEY).update(out.subarray(0, macAt)).digest().subarray(0, 8), macAt);
  return out;
}

describe("message key", () => {
  it("seals with AES-256-CBC and an 8-byte HMAC from HKDF(M, 'OLM_KEYS')", () => {
    const plaintext = utf8Encode("a message that needs two AES blocks");
    const sealed = sealMessage(MESSAGE_KEY, RATCHET_KEY, 300, plaintext, null);
    assert.deepEqual(sealed, expectedMessage(plaintext, 300));
    assert.deepEqual(openMessage(MESSAGE_KEY, decodeMessage(sealed)), plaintext);
  });

  it("wraps a pre-key message around the same inner message", () => {
    const plaintext = utf8Encode("first");
    const wrap = {
      oneTimeKey: new Uint8Array(32).fill(1),
      baseKey: new Uint8Array(32).fill(2),
      identityKey: new Uint8Array(32).fill(3),
    };
    const outer = decodePreKeyMessage(sealMessage(MESSAGE_KEY, RATCHET_KEY, 0, plaintext, wrap));
    assert.deepEqual(outer.baseKey, wrap.baseKey);
    assert.deepEqual(outer.message, expectedMessage(plaintext, 0));
  });

  it("refuses a wrong MAC before decrypting, and reports bad padding behind a good MAC", () => {
    const sealed = sealMessage(MESSAGE_KEY, RATCHET_KEY, 1, utf8Encode("x"), null);
    sealed[sealed.length - 1] = (sealed[sealed.length - 1] as number) ^ 0x80;
    assert.throws(() => openMessage(MESSAGE_KEY, decodeMessage(sealed)), isCode("BAD_MESSAGE_MAC"));
    // 15 bytes of ciphertext: not whole AES blocks, but correctly MACed.
    const out = new Uint8Array(messageLength(1, 15));
    const macAt = writeMessageBody(out, 0, RATCHET_KEY, 1, new Uint8Array(15));
    out.set(createHmac("sha256", HMAC_KEY).update(out.subarray(0, macAt)).digest().subarray(0, 8), macAt);
    assert.throws(() => openMessage(MESSAGE_KEY, decodeMessage(out)), isCode("DECRYPTION_FAILED"));
  });
});
