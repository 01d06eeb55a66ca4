// The decoded attachment key is wiped once decryption is over: whole files after the decryption
// (or its refusal), streams at their end, on an error and on a cancel.
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { decodeBase64Url } from "../primitives/symmetric.ts";
import { decryptAttachment, decryptAttachmentAsync, encryptAttachment } from "./attachment.ts";
import { AttachmentError } from "./errors.ts";
import { AttachmentDecryptor, decryptAttachmentStream } from "./stream.ts";

const data = new Uint8Array(5000).map((_, i) => (i * 13) & 0xff);
const { ciphertext, info } = encryptAttachment(data);
const key = decodeBase64Url(info.key.k);
const tampered = ciphertext.slice();
tampered[100] = (tampered[100] ?? 0) ^ 1;

/** Counts the arrays holding the key that get zeroed (`wipe` is `fill(0)`) while the test runs. */
function watchWipes(t: TestContext): { count: () => number } {
  let wipes = 0;
  const fill = Uint8Array.prototype.fill;
  t.mock.method(Uint8Array.prototype, "fill", function (this: Uint8Array, ...args: Parameters<typeof fill>) {
    if (
      args[0] === 0 &&
      args.length === 1 &&
      this.length === key.length &&
      this.every((b, i) => b === key[i])
    ) {
      wipes++;
    }
    return fill.apply(this, args);
  });
  return { count: () => wipes };
}

const streamOf = (parts: Uint8Array[], end: "close" | Error = "close") =>
  new ReadableStream<Uint8Array>({
    start(ctrl) {
      for (const p of parts) ctrl.enqueue(p);
      if (end === "close") ctrl.close();
      else ctrl.error(end);
    },
  });

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of stream) parts.push(p);
  return Buffer.concat(parts);
}

const isMismatch = (e: unknown) => e instanceof AttachmentError && e.code === "HASH_MISMATCH";

test("a whole decryption wipes the key after decrypting, and when it refuses the file", async (t) => {
  const wipes = watchWipes(t);
  assert.deepEqual(decryptAttachment(ciphertext, info), data);
  assert.equal(wipes.count(), 1);
  assert.deepEqual(await decryptAttachmentAsync(ciphertext, info), data);
  assert.equal(wipes.count(), 2);
  assert.throws(() => decryptAttachment(tampered, info), isMismatch);
  assert.equal(wipes.count(), 3);
  await assert.rejects(decryptAttachmentAsync(tampered, info), isMismatch);
  assert.equal(wipes.count(), 4);
});

test("a streamed decryption wipes the key at its end, not before", async (t) => {
  const wipes = watchWipes(t);
  const plaintext = decryptAttachmentStream(
    streamOf([ciphertext.subarray(0, 1000), ciphertext.subarray(1000)]),
    info,
  );
  const reader = plaintext.getReader();
  const first = await reader.read();
  assert.equal(wipes.count(), 0, "wiped while the stream still needs the key");
  const rest: Uint8Array[] = [first.value ?? new Uint8Array()];
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest.push(r.value);
  assert.deepEqual(Buffer.concat(rest), Buffer.from(data));
  assert.equal(wipes.count(), 1);
});

test("a streamed decryption wipes the key on a hash mismatch, an error of its source and a cancel", async (t) => {
  const wipes = watchWipes(t);
  await assert.rejects(readAll(decryptAttachmentStream(streamOf([tampered]), info)), isMismatch);
  assert.equal(wipes.count(), 1);
  await assert.rejects(
    readAll(decryptAttachmentStream(streamOf([ciphertext.subarray(0, 10)], new Error("cut")), info)),
    /cut/,
  );
  assert.equal(wipes.count(), 2);
  const cancelled = decryptAttachmentStream(
    streamOf([ciphertext.subarray(0, 10), ciphertext.subarray(10)]),
    info,
  );
  const reader = cancelled.getReader();
  await reader.read();
  await reader.cancel();
  assert.equal(wipes.count(), 3);
});

test("AttachmentDecryptor wipes its key in final(), whatever the outcome, and in dispose()", (t) => {
  const wipes = watchWipes(t);
  const ok = new AttachmentDecryptor(info);
  ok.update(ciphertext);
  ok.final();
  assert.equal(wipes.count(), 1);
  const bad = new AttachmentDecryptor(info);
  bad.update(tampered);
  assert.throws(() => bad.final(), isMismatch);
  assert.equal(wipes.count(), 2);
  const dropped = new AttachmentDecryptor(info);
  dropped.dispose();
  assert.equal(wipes.count(), 3);
  // After final() or dispose() it refuses more data rather than use a zeroed key.
  assert.throws(() => dropped.update(ciphertext), /disposed|finished/);
});
