import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deriveKeyFromPassphrase } from "../crypto/secret-storage/index.ts";
import { derivePassphraseKey } from "./encryption/secret-storage-impl.ts";
import { type YieldGlobals, yieldFor, yieldMethod, yieldToEventLoop } from "./yield.ts";

/** Resolves `yielded` and records whether a task queued before it ran first (a real event-loop turn). */
async function turnsTheLoop(yieldOnce: () => Promise<void>): Promise<boolean> {
  let taskRan = false;
  setTimeout(() => {
    taskRan = true;
  }, 0);
  // A few yields: setTimeout(0) may be due only after a millisecond.
  for (let i = 0; i < 50 && !taskRan; i++) await yieldOnce();
  return taskRan;
}

const { MessageChannel } = globalThis;

describe("yieldToEventLoop", () => {
  it("uses setImmediate on Node, MessageChannel without it (browsers, workers), setTimeout(0) last", () => {
    assert.equal(yieldMethod(globalThis as unknown as YieldGlobals), "setImmediate");
    const browserLike: YieldGlobals = { MessageChannel, setTimeout };
    assert.equal(yieldMethod(browserLike), "MessageChannel");
    assert.equal(yieldMethod({ setTimeout }), "setTimeout");
  });

  it("each method resolves after the event loop has run queued tasks, and leaves nothing open", async () => {
    assert.equal(await turnsTheLoop(yieldToEventLoop), true);
    assert.equal(await turnsTheLoop(yieldFor({ MessageChannel, setTimeout })), true);
    assert.equal(await turnsTheLoop(yieldFor({ setTimeout })), true);
    // Concurrent yields through MessageChannel each resolve (one channel each).
    const viaChannel = yieldFor({ MessageChannel, setTimeout });
    await Promise.all(Array.from({ length: 20 }, viaChannel));
  });

  it("secret storage's passphrase derivation with progress yields between steps and gives the one-shot key", async () => {
    const info = {
      algorithm: "m.pbkdf2" as const,
      salt: "salt for the yield test",
      iterations: 50_000,
      bits: 256,
    };
    const progress: number[] = [];
    const key = await derivePassphraseKey("a passphrase", info, (f) => progress.push(f));
    assert.deepEqual(key, deriveKeyFromPassphrase("a passphrase", info));
    assert.ok(progress.length > 2, `${progress.length} progress reports`);
    assert.equal(progress.at(-1), 1);
  });
});
