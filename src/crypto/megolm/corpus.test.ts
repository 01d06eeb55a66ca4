// Replays vodozemac's AFL seed corpora for its Megolm targets (test/vectors/megolm/
// vodozemac-afl-corpus.json, provenance inside) through Keyroom's decoders: whatever the input,
// the only exception allowed is MegolmError, and the receiving session stays usable.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { decodeBase64, encodeBase64, utf8Decode } from "../primitives/index.ts";
import { MegolmError } from "./errors.ts";
import { InboundGroupSession } from "./inbound.ts";
import { decodeMegolmMessage } from "./message.ts";
import { OutboundGroupSession } from "./outbound.ts";

interface Corpus {
  messageDecoding: string[];
  messageDecryption: string[];
  sessionCreation: string[];
  sessionImport: string[];
}

const corpus = JSON.parse(
  readFileSync(new URL("../../../test/vectors/megolm/vodozemac-afl-corpus.json", import.meta.url), "utf8"),
) as Corpus;

function onlyMegolmErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof MegolmError)) throw e;
  }
}

describe("vodozemac AFL corpora", () => {
  it("holds every target's seeds", () => {
    assert.ok(corpus.messageDecoding.length > 50);
    assert.ok(corpus.messageDecryption.length > 50);
    assert.ok(corpus.sessionCreation.length > 0);
    assert.ok(corpus.sessionImport.length > 0);
  });

  it("message inputs are decoded or refused with MegolmError only", () => {
    const sender = OutboundGroupSession.create();
    const receiver = InboundGroupSession.fromSessionKey(sender.sessionKey());
    const good = sender.encrypt("still works");
    for (const entry of [...corpus.messageDecoding, ...corpus.messageDecryption]) {
      const bytes = decodeBase64(entry);
      onlyMegolmErrors(() => decodeMegolmMessage(bytes));
      onlyMegolmErrors(() => receiver.decrypt(encodeBase64(bytes)));
      // Some seeds are base64 text themselves: feed them as the message string too.
      onlyMegolmErrors(() => receiver.decrypt(new TextDecoder().decode(bytes)));
    }
    assert.equal(utf8Decode(receiver.decrypt(good).plaintext), "still works");
  });

  it("session key and export inputs are accepted or refused with MegolmError only", () => {
    for (const entry of [...corpus.sessionCreation, ...corpus.sessionImport]) {
      const bytes = decodeBase64(entry);
      for (const text of [encodeBase64(bytes), new TextDecoder().decode(bytes)]) {
        onlyMegolmErrors(() => InboundGroupSession.fromSessionKey(text));
        onlyMegolmErrors(() => InboundGroupSession.fromExport(text));
      }
    }
  });
});
