// decryptAsync gives exactly what decrypt gives: the same plaintexts and indexes on random
// sessions and messages, the same error on every tampered or forged message, whatever order
// and overlap the calls come in. Run here on the Node back end, and again (a child process) on
// the JavaScript back end, where the async primitives are Web Crypto's, as in browsers.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import {
  aes256CbcEncrypt,
  asyncPrimitivesFaster,
  backendName,
  decodeBase64,
  encodeBase64,
  randomBytes,
} from "../primitives/index.ts";
import { MegolmError } from "./errors.ts";
import { InboundGroupSession } from "./inbound.ts";
import { OutboundGroupSession } from "./outbound.ts";
import { forge, senderAt } from "./test-support/forge.ts";

// Fewer runs on the JavaScript back end, whose synchronous reference decrypt is slow on Node.
const RUNS = backendName === "node" ? 20 : 8;

type Outcome = { plaintext: string; messageIndex: number } | { code: string; message: string };

async function outcome(f: () => unknown): Promise<Outcome> {
  try {
    const r = (await f()) as { plaintext: Uint8Array; messageIndex: number };
    return { plaintext: encodeBase64(r.plaintext), messageIndex: r.messageIndex };
  } catch (e) {
    assert.ok(e instanceof MegolmError, String(e));
    return { code: e.code, message: e.message };
  }
}

type Tamper =
  | { kind: "none" }
  | { kind: "flip"; at: number; mask: number }
  | { kind: "truncate"; at: number }
  | { kind: "badMac" }
  | { kind: "badPadding" }
  | { kind: "otherSession" }
  | { kind: "garbage"; text: string };

const tamper: fc.Arbitrary<Tamper> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: "none" as const }) },
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.constant({ kind: "badMac" as const }),
  fc.constant({ kind: "badPadding" as const }),
  fc.constant({ kind: "otherSession" as const }),
  fc.record({ kind: fc.constant("garbage" as const), text: fc.string({ maxLength: 40 }) }),
);

/** The message at `index` of `sender`'s session (its ratchet is not moved), tampered as asked. */
function message(sender: OutboundGroupSession, index: number, length: number, t: Tamper): string {
  const plaintext = randomBytes(length);
  switch (t.kind) {
    case "badMac":
      return forge(sender, index, (k) => aes256CbcEncrypt(k.aesKey, k.iv, plaintext), true);
    case "badPadding":
      return forge(sender, index, (k) =>
        aes256CbcEncrypt(k.aesKey, k.iv, new Uint8Array(16)).subarray(0, 16),
      );
    case "otherSession":
      return OutboundGroupSession.create().encrypt(plaintext);
    case "garbage":
      return t.text;
    default:
      break;
  }
  const good = decodeBase64(forge(sender, index, (k) => aes256CbcEncrypt(k.aesKey, k.iv, plaintext)));
  if (t.kind === "flip") good[t.at % good.length]! ^= t.mask;
  return encodeBase64(t.kind === "truncate" ? good.subarray(0, t.at % good.length) : good);
}

describe(`InboundGroupSession.decryptAsync (${backendName} back end)`, () => {
  it("the same results and errors as decrypt on random sessions, messages and tampering", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 70_000 }),
        fc.array(fc.record({ step: fc.nat({ max: 300 }), length: fc.nat({ max: 300 }), tamper }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.nat({ max: 5 }),
        async (start, steps, laterBy) => {
          const sender = senderAt(OutboundGroupSession.create(), start);
          // One copy from the session key, one exported a little later (earlier indexes are unknown to it).
          const key = sender.sessionKey();
          const exported = InboundGroupSession.fromSessionKey(key).exportAt(start + laterBy);
          const pairs = [
            [InboundGroupSession.fromSessionKey(key), InboundGroupSession.fromSessionKey(key)],
            [InboundGroupSession.fromExport(exported), InboundGroupSession.fromExport(exported)],
          ] as const;
          let index = start;
          for (const s of steps) {
            index = s.step % 3 === 0 ? start + (s.step % 4) : index + s.step; // back to early indexes now and then
            const text = message(sender, index, s.length, s.tamper);
            for (const [sync, async] of pairs) {
              const expected = await outcome(() => sync.decrypt(text));
              assert.deepEqual(await outcome(() => async.decryptAsync(text)), expected);
            }
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("overlapping calls, in any order and mixed with decrypt, give each message its own result", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ index: fc.nat({ max: 600 }), tamper, sync: fc.boolean() }), {
          minLength: 2,
          maxLength: 24,
        }),
        async (calls) => {
          const sender = OutboundGroupSession.create();
          const reference = InboundGroupSession.fromSessionKey(sender.sessionKey());
          const shared = InboundGroupSession.fromSessionKey(sender.sessionKey());
          const texts = calls.map((c) => message(sender, c.index, 20, c.tamper));
          const expected = await Promise.all(texts.map((t) => outcome(() => reference.decrypt(t))));
          const got = await Promise.all(
            texts.map((t, i) =>
              outcome(() => (calls[i]?.sync === true ? shared.decrypt(t) : shared.decryptAsync(t))),
            ),
          );
          assert.deepEqual(got, expected);
          // And the session is still whole afterwards, at every index tried.
          for (const t of texts)
            assert.deepEqual(
              await outcome(() => shared.decryptAsync(t)),
              await outcome(() => reference.decrypt(t)),
            );
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("a forged message far ahead fails without moving the session", async () => {
    const sender = OutboundGroupSession.create();
    const inbound = InboundGroupSession.fromSessionKey(sender.sessionKey());
    const first = sender.encrypt("first");
    const far = OutboundGroupSession.create();
    await assert.rejects(inbound.decryptAsync(senderAt(far, 1 << 24).encrypt("x")), {
      code: "BAD_SIGNATURE",
    });
    assert.equal((await inbound.decryptAsync(first)).messageIndex, 0);
    assert.equal((await inbound.decryptAsync(sender.encrypt("second"))).messageIndex, 1);
  });

  if (backendName === "node") {
    it("on the JavaScript back end (Web Crypto for Ed25519, HKDF, HMAC and AES, as in browsers) too", () => {
      const file = fileURLToPath(import.meta.url);
      const { NODE_TEST_CONTEXT: _, ...env } = process.env; // a test run of its own, reporting to stdout
      const r = spawnSync(
        process.execPath,
        ["--conditions=keyroom-noble", "--conditions=source", "--import", "tsx", "--test", file],
        { encoding: "utf8", env },
      );
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /^ok \d+ - InboundGroupSession\.decryptAsync \(noble back end\)$/m);
      assert.match(r.stdout, /^# fail 0$/m);
    });
  } else {
    it("takes the Web Crypto path here", () => assert.equal(asyncPrimitivesFaster, true));
  }
});
