// The dehydrated-device pickle: its byte layout (vodozemac's matrix-pickle encoding, read from
// vodozemac src/olm/account/mod.rs), sealing, and refusals. Interop with the rust-sdk is in
// test/interop/vodozemac-dehydrated-device.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { chacha20Poly1305Decrypt } from "../../primitives/aead.ts";
import { decodeBase64, encodeBase64, randomBytes } from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import { Account } from "./account.ts";
import {
  decodeDehydratedAccount,
  encodeDehydratedAccount,
  fromDehydratedDevice,
  openDehydratedAccount,
  sealDehydratedAccount,
  toDehydratedDevice,
} from "./dehydrated-device.ts";
import { MAX_ONE_TIME_KEYS } from "./one-time-keys.ts";

const filled = (byte: number) => new Uint8Array(32).fill(byte);

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof OlmError) return e.code;
    throw e;
  }
  return "no error";
}

describe("dehydrated-device pickle", () => {
  const keys = {
    curve25519Secret: filled(1),
    ed25519Seed: filled(2),
    oneTimeKeys: [filled(3), filled(4)],
    fallbackKey: filled(5),
  };

  it("lays the keys out as vodozemac does: u32 BE version and count, one-byte option flag", () => {
    const bytes = encodeDehydratedAccount(keys);
    const hex = Buffer.from(bytes).toString("hex");
    const k = (b: number) => b.toString(16).padStart(2, "0").repeat(32);
    assert.equal(hex, `00000001${k(1)}${k(2)}00000002${k(3)}${k(4)}01${k(5)}`);
    assert.deepEqual(decodeDehydratedAccount(bytes), keys);
    const none = encodeDehydratedAccount({ ...keys, oneTimeKeys: [], fallbackKey: null });
    assert.equal(Buffer.from(none).toString("hex"), `00000001${k(1)}${k(2)}0000000000`);
  });
  it("seals with ChaCha20-Poly1305 under the key and a 12-byte nonce, no associated data", () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const pickle = sealDehydratedAccount(keys, key, nonce);
    assert.equal(pickle.nonce, encodeBase64(nonce));
    const opened = chacha20Poly1305Decrypt(key, nonce, decodeBase64(pickle.ciphertext));
    assert.deepEqual(opened, encodeDehydratedAccount(keys));
    assert.deepEqual(openDehydratedAccount(pickle, key), keys);
  });
  it("an account round-trips: same identity, its keys still open sessions", () => {
    const account = Account.create();
    account.generateOneTimeKeys(3);
    account.generateFallbackKey();
    const otks = Object.values(account.oneTimeKeys());
    const fallback = Object.values(account.fallbackKey());
    const key = randomBytes(32);
    const back = fromDehydratedDevice(toDehydratedDevice(account, key), key);
    assert.deepEqual(back.identityKeys, account.identityKeys);
    assert.deepEqual(back.oneTimeKeys(), {}); // all published
    for (const target of [...otks, ...fallback]) {
      const bob = Account.create();
      const message = bob.createOutboundSession(back.identityKeys.curve25519, target).encrypt("hi");
      assert.equal(
        Buffer.from(back.createInboundSession(bob.identityKeys.curve25519, message).plaintext).toString(),
        "hi",
      );
    }
    assert.equal(back.sign("x"), account.sign("x"));
  });
  it("refuses a wrong key, altered bytes and malformed pickles with typed errors", () => {
    const key = randomBytes(32);
    const pickle = sealDehydratedAccount(keys, key);
    assert.equal(
      code(() => openDehydratedAccount(pickle, randomBytes(32))),
      "DECRYPTION_FAILED",
    );
    const altered = decodeBase64(pickle.ciphertext);
    altered[5]! ^= 1;
    assert.equal(
      code(() => openDehydratedAccount({ ...pickle, ciphertext: encodeBase64(altered) }, key)),
      "DECRYPTION_FAILED",
    );
    assert.equal(
      code(() => openDehydratedAccount({ ...pickle, nonce: encodeBase64(new Uint8Array(24)) }, key)),
      "BAD_PICKLE",
    );
    assert.equal(
      code(() => openDehydratedAccount({ ...pickle, ciphertext: "!!" }, key)),
      "BAD_PICKLE",
    );
    assert.equal(
      code(() => openDehydratedAccount({ ...pickle, ciphertext: "AAAA" }, key)),
      "BAD_PICKLE",
    );
    assert.equal(
      code(() => openDehydratedAccount(pickle, new Uint8Array(16))),
      "BAD_ARGUMENT",
    );
    const v2 = encodeDehydratedAccount(keys);
    v2[3] = 2;
    assert.equal(
      code(() => decodeDehydratedAccount(v2)),
      "BAD_PICKLE",
    );
    const dup = sealDehydratedAccount({ ...keys, oneTimeKeys: [filled(3), filled(3)] }, key);
    assert.equal(
      code(() => fromDehydratedDevice(dup, key)),
      "BAD_PICKLE",
    );
  });
  it(`carries up to MAX_ONE_TIME_KEYS (${MAX_ONE_TIME_KEYS}) one-time keys, as vodozemac's accounts hold, and refuses more`, () => {
    const many = (n: number) => Array.from({ length: n }, () => randomBytes(32));
    const full = { ...keys, oneTimeKeys: many(MAX_ONE_TIME_KEYS) };
    const key = randomBytes(32);
    const account = fromDehydratedDevice(sealDehydratedAccount(full, key), key);
    assert.equal(account.toPickle().oneTimeKeys.length, MAX_ONE_TIME_KEYS, "every key rehydrated");
    assert.equal(
      code(() =>
        decodeDehydratedAccount(
          encodeDehydratedAccount({ ...keys, oneTimeKeys: many(MAX_ONE_TIME_KEYS + 1) }),
        ),
      ),
      "BAD_PICKLE",
    );
    // A count over the bound is refused before the length is looked at.
    const header = encodeDehydratedAccount({ ...keys, oneTimeKeys: [], fallbackKey: null });
    new DataView(header.buffer).setUint32(68, MAX_ONE_TIME_KEYS + 1);
    assert.equal(
      code(() => decodeDehydratedAccount(header)),
      "BAD_PICKLE",
    );
  });
  it("the decoder throws only OlmError for any bytes", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 200 }).map((tail) => {
            const b = new Uint8Array(4 + tail.length);
            b[3] = 1;
            b.set(tail, 4);
            return b;
          }),
        ),
        (bytes) => {
          code(() => decodeDehydratedAccount(bytes));
        },
      ),
      { numRuns: 500 },
    );
  });
});
