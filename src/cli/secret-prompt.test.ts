// The no-echo secret prompt: input decoded as one UTF-8 stream, so a character whose bytes come in
// two reads is read whole; raw mode on while it reads and off after.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import { readSecretFrom, type SecretInput } from "./secret-prompt.ts";

/** A terminal's input the test types into, chunk by chunk; records raw mode. */
class FakeTerminal extends EventEmitter implements SecretInput {
  raw: boolean[] = [];
  paused = false;
  setRawMode(raw: boolean): void {
    this.raw.push(raw);
  }
  resume(): void {
    this.paused = false;
  }
  pause(): void {
    this.paused = true;
  }
  type(...chunks: Buffer[]): void {
    for (const chunk of chunks) this.emit("data", chunk);
  }
}

/** `bytes` cut at every offset in `cuts`. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (const at of [...cuts, bytes.length]) {
    out.push(bytes.subarray(from, at));
    from = at;
  }
  return out;
}

async function typed(
  chunks: Buffer[],
): Promise<{ secret: string | undefined; shown: string; tty: FakeTerminal }> {
  const tty = new FakeTerminal();
  let shown = "";
  let interrupted = false;
  const secret = readSecretFrom(
    tty,
    "Passphrase: ",
    (t) => (shown += t),
    () => (interrupted = true),
  );
  tty.type(...chunks);
  const result = { secret: await secret, shown, tty };
  assert.equal(interrupted, result.secret === undefined);
  return result;
}

test("a multi-byte character split across reads is read whole", async () => {
  const secret = "pässwörd 🔑 ok";
  const bytes = Buffer.from(`${secret}\r`, "utf8");
  // Inside "ä" (2 bytes), inside "ö", and twice inside the 4-byte emoji.
  const a = bytes.indexOf(Buffer.from("ä")) + 1;
  const o = bytes.indexOf(Buffer.from("ö")) + 1;
  const key = bytes.indexOf(Buffer.from("🔑"));
  const r = await typed(split(bytes, [a, o, key + 1, key + 3]));
  assert.equal(r.secret, secret);
  // Nothing typed is shown: only the prompt and the final newline.
  assert.equal(r.shown, "Passphrase: \n");
  assert.deepEqual(r.tty.raw, [true, false]);
  assert.equal(r.tty.paused, true);
  assert.equal(r.tty.listenerCount("data"), 0);
});

test("one byte per read, Backspace removing a whole multi-byte character", async () => {
  const bytes = Buffer.concat([
    Buffer.from("añ€", "utf8"),
    Buffer.from([0x7f]),
    Buffer.from("x🔑\r", "utf8"),
  ]);
  const r = await typed(split(bytes, [...bytes.keys()].slice(1)));
  assert.equal(r.secret, "añx🔑");
});

test("Ctrl-C ends the prompt with no secret", async () => {
  const r = await typed([Buffer.from("pä"), Buffer.from([0xc3]), Buffer.from([0xa4, 0x03])]);
  assert.equal(r.secret, undefined);
  assert.deepEqual(r.tty.raw, [true, false]);
});
