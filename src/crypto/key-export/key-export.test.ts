import assert from "node:assert/strict";
import { describe, it, test } from "node:test";
import fc from "fast-check";
import { KeyExportError } from "./errors.ts";
import { type ExportedRoomKey, parseExportedRoomKey, readSharedHistory } from "./exported-room-key.ts";
import {
  decryptKeyExport,
  decryptKeyExportAsync,
  encryptKeyExport,
  encryptKeyExportAsync,
} from "./key-export.ts";

const key: ExportedRoomKey = {
  algorithm: "m.megolm.v1.aes-sha2",
  room_id: "!room:example.org",
  sender_key: "SENDERcurve25519",
  session_id: "SESSIONid",
  session_key: "AQAAAA",
  sender_claimed_keys: { ed25519: "CLAIMEDed25519" },
  forwarding_curve25519_key_chain: [],
};

test("export files round trip with the passphrase and are armoured", () => {
  const file = encryptKeyExport([key, { ...key, session_id: "other" }], "correct horse", { rounds: 1000 });
  assert.match(file, /^-----BEGIN MEGOLM SESSION DATA-----\n/);
  assert.match(file, /\n-----END MEGOLM SESSION DATA-----\n$/);
  for (const line of file.trim().split("\n").slice(1, -1)) assert.ok(line.length <= 96);
  const entries = decryptKeyExport(file, "correct horse");
  assert.deepEqual(entries.map(parseExportedRoomKey), [key, { ...key, session_id: "other" }]);
});

test("the asynchronous forms read and write the same files, and leave the thread free while deriving", async () => {
  const written = await encryptKeyExportAsync([key], "correct horse", { rounds: 1000 });
  assert.deepEqual(decryptKeyExport(written, "correct horse").map(parseExportedRoomKey), [key]);
  const file = encryptKeyExport([key], "correct horse", { rounds: 300_000 });
  // A callback queued now runs before the derivation ends only if the derivation is off this thread.
  let ran = false;
  setImmediate(() => {
    ran = true;
  });
  const entries = await decryptKeyExportAsync(file, "correct horse");
  assert.equal(ran, true, "the event loop turned during the derivation");
  assert.deepEqual(entries.map(parseExportedRoomKey), [key]);
  await assert.rejects(decryptKeyExportAsync(file, "wrong"), { code: "BAD_PASSPHRASE" });
});

test("a wrong passphrase or a modified file is refused", () => {
  const file = encryptKeyExport([key], "pass", { rounds: 10 });
  assert.throws(() => decryptKeyExport(file, "wrong"), { name: "KeyExportError", code: "BAD_PASSPHRASE" });
  const lines = file.split("\n");
  const body = lines[1] as string;
  lines[1] = (body[5] === "A" ? `${body.slice(0, 5)}B` : `${body.slice(0, 5)}A`) + body.slice(6);
  assert.throws(() => decryptKeyExport(lines.join("\n"), "pass"), { code: "BAD_PASSPHRASE" });
});

test("malformed files give typed errors", () => {
  assert.throws(() => decryptKeyExport("hello", "p"), { code: "BAD_FORMAT" });
  assert.throws(
    () =>
      decryptKeyExport("-----BEGIN MEGOLM SESSION DATA-----\nAQID\n-----END MEGOLM SESSION DATA-----", "p"),
    { code: "BAD_FORMAT" },
  );
  assert.throws(() => encryptKeyExport([key], "p", { rounds: 0 }), { code: "BAD_ROUNDS" });
});

test("an absurd round count in a file is refused before any key derivation", () => {
  const file = encryptKeyExport([key], "p", { rounds: 1 });
  const armoured = file.split("\n").slice(1, -2).join("");
  const bytes = Buffer.from(armoured, "base64");
  bytes.writeUInt32BE(0xffffffff, 33);
  const forged = `-----BEGIN MEGOLM SESSION DATA-----\n${bytes.toString("base64")}\n-----END MEGOLM SESSION DATA-----\n`;
  assert.throws(() => decryptKeyExport(forged, "p"), { code: "BAD_ROUNDS" });
});

test("entries that are not room keys are reported, not fatal", () => {
  assert.equal(typeof parseExportedRoomKey({ ...key, session_key: 5 }), "string");
  assert.equal(typeof parseExportedRoomKey(null), "string");
  assert.equal(typeof parseExportedRoomKey({ ...key, sender_claimed_keys: { ed25519: 1 } }), "string");
  assert.deepEqual(parseExportedRoomKey({ ...key, forwarding_curve25519_key_chain: undefined }), key);
});

test("arbitrary input never throws anything but KeyExportError", () => {
  fc.assert(
    fc.property(fc.string(), (s) => {
      const file = `-----BEGIN MEGOLM SESSION DATA-----\n${s}\n-----END MEGOLM SESSION DATA-----`;
      for (const input of [s, file]) {
        try {
          decryptKeyExport(input, "p");
        } catch (e) {
          assert.ok(e instanceof KeyExportError, String(e));
        }
      }
    }),
    { numRuns: 300 },
  );
});

describe("shared-history flag (MSC4268)", () => {
  it("reads the spec's name first, then the names other SDKs write; writes only when true", () => {
    const base = {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: "!r:x",
      sender_key: "k",
      session_id: "s",
      session_key: "AQ",
    };
    assert.equal(readSharedHistory({ shared_history: true, "m.shared_history": false }), true);
    assert.equal(readSharedHistory({ "m.shared_history": true }), true);
    assert.equal(readSharedHistory({ "org.matrix.msc3061.shared_history": true }), true);
    assert.equal(readSharedHistory({ shared_history: "yes" }), undefined);
    const parsed = parseExportedRoomKey({ ...base, "org.matrix.msc3061.shared_history": true });
    assert.equal(typeof parsed === "object" && parsed.shared_history, true);
    const unshared = parseExportedRoomKey({ ...base, shared_history: false });
    assert.ok(typeof unshared === "object" && !("shared_history" in unshared));
  });
});
