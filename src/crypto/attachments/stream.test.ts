import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { decryptAttachment, encryptAttachment } from "./attachment.ts";
import type { EncryptedFileInfo } from "./file-info.ts";
import {
  AttachmentDecryptor,
  AttachmentEncryptor,
  decryptAttachmentStream,
  encryptAttachmentStream,
} from "./stream.ts";

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function split(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    parts.push(data.subarray(at, p));
    at = p;
  }
  parts.push(data.subarray(at));
  return parts;
}

function streamOf(parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const p of parts) controller.enqueue(p);
      controller.close();
    },
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return concat(parts);
}

test("chunked encryption equals whole-file decryption, for any chunking", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 8 }), (data, cuts) => {
      const encryptor = new AttachmentEncryptor();
      const ciphertext = concat(split(data, cuts).map((p) => encryptor.update(p)));
      assert.deepEqual(decryptAttachment(ciphertext, encryptor.final()), data);
    }),
    { numRuns: 200 },
  );
});

test("chunked decryption equals whole-file encryption, for any chunking", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 8 }), (data, cuts) => {
      const { ciphertext, info } = encryptAttachment(data);
      const decryptor = new AttachmentDecryptor(info);
      const plaintext = concat(split(ciphertext, cuts).map((p) => decryptor.update(p)));
      decryptor.final();
      assert.deepEqual(plaintext, data);
    }),
    { numRuns: 200 },
  );
});

test("the counter carries across bytes of the IV", () => {
  // An IV whose low bytes are 0xff: the second block's counter must carry into the next byte up
  // (within the counter half: a file whose counter would run into the random half is refused).
  const { info } = encryptAttachment(new Uint8Array(0));
  const iv = Buffer.from(info.iv, "base64");
  iv.fill(0xff, 12);
  const withCarry = { ...info, iv: iv.toString("base64").replace(/=+$/, "") };
  const data = new Uint8Array(100).fill(9);
  // The second chunk starts at block 2, so its counter is computed by us; the one-chunk run is
  // OpenSSL's own counter arithmetic over the same blocks. (No final(): only the keystream matters.)
  const decryptor = new AttachmentDecryptor(withCarry);
  const streamed = concat([decryptor.update(data.subarray(0, 40)), decryptor.update(data.subarray(40))]);
  const whole = new AttachmentDecryptor(withCarry).update(data);
  assert.deepEqual(streamed, whole);
});

test("streamed decryption refuses data past the wrap of the 64-bit counter half, before decrypting it", () => {
  const { info } = encryptAttachment(new Uint8Array(0));
  const iv = Buffer.from(info.iv, "base64");
  iv.fill(0xff, 8); // one block before the wrap
  const decryptor = new AttachmentDecryptor({ ...info, iv: iv.toString("base64").replace(/=+$/, "") });
  assert.equal(decryptor.update(new Uint8Array(10)).length, 10);
  assert.equal(decryptor.update(new Uint8Array(6)).length, 6);
  assert.throws(() => decryptor.update(new Uint8Array(1)), { code: "BAD_FILE_INFO" });
});

test("web streams round trip and report a tampered download at the end", async () => {
  const data = new Uint8Array(50_000).map((_, i) => i & 0xff);
  const { ciphertext, info } = encryptAttachmentStream(streamOf(split(data, [1, 17, 4096, 30_000])));
  const encrypted = await readAll(ciphertext);
  const fileInfo = await info;
  assert.deepEqual(decryptAttachment(encrypted, fileInfo), data);
  assert.deepEqual(await readAll(decryptAttachmentStream(streamOf([encrypted]), fileInfo)), data);

  encrypted[123] = (encrypted[123] as number) ^ 0x80;
  await assert.rejects(readAll(decryptAttachmentStream(streamOf([encrypted]), fileInfo)), {
    code: "HASH_MISMATCH",
  });
});

test("given a size, the description is known once that many bytes were read; more is an error", async () => {
  const data = new Uint8Array(40).map((_, i) => i);
  const parts40 = split(data, [10, 25]);
  // A source whose end is slow to come (a file's end takes another read).
  const slowEnd = new ReadableStream<Uint8Array>(
    { pull: (c) => (parts40.length > 0 ? c.enqueue(parts40.shift() as Uint8Array) : new Promise(() => {})) },
    { highWaterMark: 0 },
  );
  const { ciphertext, info } = encryptAttachmentStream(slowEnd, 40);
  const reader = ciphertext.getReader();
  const parts: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) parts.push((await reader.read()).value ?? new Uint8Array(0));
  // The end of the stream not read yet: the last chunk out is enough.
  let known: EncryptedFileInfo | undefined;
  info.then((i) => {
    known = i;
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(known, "the description before the stream's end");
  assert.deepEqual(decryptAttachment(concat(parts), known), data);

  const longer = encryptAttachmentStream(streamOf([data]), 39);
  await assert.rejects(readAll(longer.ciphertext), /longer than 39 bytes/);
  await assert.rejects(longer.info, /longer than 39 bytes/);
});

test("a failing source rejects the description promise", async () => {
  const failing = new ReadableStream<Uint8Array>({
    pull: (controller) => controller.error(new Error("disk gone")),
  });
  const { ciphertext, info } = encryptAttachmentStream(failing);
  await assert.rejects(readAll(ciphertext), /disk gone/);
  await assert.rejects(info, /disk gone/);
});
