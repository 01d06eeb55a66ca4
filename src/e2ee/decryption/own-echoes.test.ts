import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { decodeBase64, encodeBase64 } from "../../crypto/primitives/index.ts";
import { DecryptionError } from "../errors.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { MAX_OWN_ECHO_BYTES, MAX_OWN_ECHO_PLAINTEXT, MAX_OWN_ECHOES, OwnEchoes } from "./own-echoes.ts";
import type { DecryptedRoomEvent, EncryptedRoomEvent } from "./room-events.ts";

const ROOM = "!room:example.org";

/** Counts the Megolm decryptions that really run (the signature check, MAC and AES). */
let decryptions = 0;
const realDecrypt = InboundGroupSession.prototype.decrypt;
const realDecryptAsync = InboundGroupSession.prototype.decryptAsync;
beforeEach(() => {
  decryptions = 0;
  InboundGroupSession.prototype.decrypt = function (this: InboundGroupSession, message: string) {
    decryptions++;
    return realDecrypt.call(this, message);
  };
  InboundGroupSession.prototype.decryptAsync = function (this: InboundGroupSession, message: string) {
    decryptions++;
    return realDecryptAsync.call(this, message);
  };
});
afterEach(() => {
  InboundGroupSession.prototype.decrypt = realDecrypt;
  InboundGroupSession.prototype.decryptAsync = realDecryptAsync;
});

async function setup() {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  await alice.machine.updateTrackedUsers(["@bob:x"]);
  await bob.machine.updateTrackedUsers(["@alice:x"]);
  await alice.sync();
  await bob.sync();
  return { hs, alice, bob };
}

/** Alice sends `body`: the event as the server hands it back. */
function sent(alice: TestClient, body: string): Promise<EncryptedRoomEvent> {
  return alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), body);
}

function failsWith(code: string) {
  return (e: unknown): boolean => e instanceof DecryptionError && e.code === code;
}

describe("own echoes", () => {
  it("uses the plaintext for the echo of a sent event, with exactly the outcome decryption gives", async () => {
    const { alice } = await setup();
    const event = await sent(alice, "hello");
    const echoed = await alice.machine.decryptRoomEvent(event, ROOM);
    assert.equal(decryptions, 0, "the echo is not decrypted again");
    assert.equal(echoed.content.body, "hello");
    // The same event decrypted in full (a restart forgets what was sent): the same result, field
    // for field (trust, sender device, index...), and its replay record admits the same event ID.
    await alice.restart();
    const decrypted: DecryptedRoomEvent = await alice.machine.decryptRoomEvent(event, ROOM);
    assert.equal(decryptions, 1);
    assert.deepEqual(echoed, decrypted);
    // The echo's use wrote the replay record decryption writes: another event ID is a replay.
    await assert.rejects(
      alice.machine.decryptRoomEvent({ ...event, event_id: "$again" }, ROOM),
      failsWith("REPLAYED"),
    );
  });

  it("decrypts in full an echo that is not byte-identical", async () => {
    const { alice } = await setup();
    // A changed ciphertext goes through decryption (and fails it).
    const event = await sent(alice, "intact");
    const content = event.content as Record<string, unknown>;
    const ciphertext = content.ciphertext as string;
    const flipped = `${ciphertext.slice(0, 20)}${ciphertext[20] === "A" ? "B" : "A"}${ciphertext.slice(21)}`;
    await assert.rejects(
      alice.machine.decryptRoomEvent({ ...event, content: { ...content, ciphertext: flipped } }, ROOM),
      failsWith("BAD_SIGNATURE"),
    );
    assert.equal(decryptions, 1);
    // Another claimed device: decrypted in full, judged as decryption judges it.
    const other = await sent(alice, "device");
    const claimed = await alice.machine.tryDecryptRoomEvent(
      { ...other, content: { ...(other.content as object), device_id: "NOTA" } },
      ROOM,
    );
    assert.equal(decryptions, 2);
    assert.ok(claimed.ok);
    // The entry is still there for the byte-identical echo.
    assert.equal((await alice.machine.decryptRoomEvent(other, ROOM)).content.body, "device");
    assert.equal(decryptions, 2);
    // In another room: decrypted in full (and refused there, as decryption refuses it).
    const elsewhere = await sent(alice, "elsewhere");
    const moved = await alice.machine.tryDecryptRoomEvent(elsewhere, "!other:x");
    assert.equal(moved.ok, false);
    assert.equal((await alice.machine.decryptRoomEvent(elsewhere, ROOM)).content.body, "elsewhere");
    assert.equal(decryptions, 2);
  });

  it("catches the own ciphertext under another event ID as a replay, whichever comes first", async () => {
    const { alice, bob } = await setup();
    // The server hands the ciphertext back under another ID first: it takes the index (the
    // plaintext used, as for any first copy); the genuine echo, decrypted in full, is then the
    // replay, as decryption of both would say.
    const event = await sent(alice, "first");
    const forged = { ...event, event_id: "$forged" };
    assert.equal((await alice.machine.decryptRoomEvent(forged, ROOM)).content.body, "first");
    assert.equal(decryptions, 0);
    await assert.rejects(alice.machine.decryptRoomEvent(event, ROOM), failsWith("REPLAYED"));
    assert.equal(decryptions, 1, "the entry is used once: the second copy is decrypted");

    // The genuine echo first, then the same ciphertext under a new ID: decrypted, a replay.
    const second = await sent(alice, "second");
    await alice.machine.decryptRoomEvent(second, ROOM);
    await assert.rejects(
      alice.machine.decryptRoomEvent({ ...second, event_id: "$replayed" }, ROOM),
      failsWith("REPLAYED"),
    );
    assert.equal(decryptions, 2);
    // A copy naming another sender first: it uses the entry up and is judged as decryption judges
    // it (a session of no device of Bob's); the genuine echo is then decrypted in full, and is ours.
    const third = await sent(alice, "third");
    const claimed = await alice.machine.tryDecryptRoomEvent({ ...third, sender: "@bob:x" }, ROOM);
    assert.ok(claimed.ok && claimed.event.trust === "unknown_device");
    assert.equal(decryptions, 2);
    const genuine = await alice.machine.decryptRoomEvent(third, ROOM);
    assert.equal(decryptions, 3);
    assert.equal(genuine.trust, "verified");
    // Other devices decrypt as always.
    await bob.sync();
    assert.equal((await bob.machine.decryptRoomEvent(second, ROOM)).content.body, "second");
    assert.equal(decryptions, 4);
  });

  it("decrypts in full when the session stored under the echo's ID is another one holding its ratchet", async () => {
    const { alice } = await setup();
    const event = await sent(alice, "tampered");
    const sessionId = (event.content as { session_id: string }).session_id;
    const record = await alice.store.getInboundGroupSession(ROOM, sessionId);
    assert.ok(record);
    // A corrupt row: the genuine ratchet under another signing key (a v1 export ends with it).
    const genuine = InboundGroupSession.fromPickle(record.pickle);
    const exported = decodeBase64(genuine.exportAt(genuine.firstKnownIndex));
    const other = decodeBase64(
      InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey()).exportAt(0),
    );
    exported.set(other.subarray(other.length - 32), exported.length - 32);
    const impostor = InboundGroupSession.fromExport(encodeBase64(exported));
    assert.notEqual(impostor.sessionId, sessionId);
    // It holds the message's ratchet (an export: version, index, ratchet, signing key).
    assert.ok(impostor.holdsRatchet(genuine.firstKnownIndex, exported.slice(5, 5 + 128)));
    await alice.store.saveChanges({ inboundGroupSessions: [{ ...record, pickle: impostor.toPickle() }] });
    await alice.machine.reload();
    await assert.rejects(alice.machine.decryptRoomEvent(event, ROOM), failsWith("BAD_SIGNATURE"));
    assert.equal(decryptions, 1, "decrypted in full");
  });

  it("uses the plaintext only when the session held for the room has the message's ratchet", () => {
    const outbound = OutboundGroupSession.create();
    const inbound = InboundGroupSession.fromSessionKey(outbound.sessionKey());
    const ratchet = outbound.ratchetCopy();
    const ciphertext = outbound.encrypt("{}");
    assert.equal(inbound.holdsRatchet(0, new Uint8Array(ratchet.length)), false);
    // Another session cannot pass for this one: its ratchet differs.
    const unrelated = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
    assert.equal(unrelated.holdsRatchet(0, ratchet), false);
    // Below the first known index: false.
    const later = InboundGroupSession.fromSessionKey(outbound.sessionKey());
    assert.equal(later.firstKnownIndex, 1);
    assert.equal(later.holdsRatchet(0, ratchet), false);
    assert.equal(inbound.holdsRatchet(0, ratchet), true);
    // The session decrypts as before.
    assert.equal(realDecrypt.call(inbound, ciphertext).messageIndex, 0);
  });

  it(`keeps at most MAX_OWN_ECHOES (${MAX_OWN_ECHOES}) entries, none with a large plaintext`, () => {
    const echoes = new OwnEchoes();
    const entry = (i: number, plaintext = "{}") => ({
      roomId: ROOM,
      algorithm: "m.megolm.v1.aes-sha2",
      senderKey: "k",
      sessionId: "s",
      deviceId: "D",
      ciphertext: `c${i}`,
      plaintext,
      messageIndex: i,
      ratchet: new Uint8Array(128).fill(1),
    });
    const first = entry(0);
    echoes.add(first);
    for (let i = 1; i <= MAX_OWN_ECHOES; i++) echoes.add(entry(i));
    assert.equal(echoes.size, MAX_OWN_ECHOES);
    assert.ok(
      first.ratchet.every((b) => b === 0),
      "an evicted entry's ratchet is wiped",
    );
    const large = entry(-1, "x".repeat(MAX_OWN_ECHO_PLAINTEXT + 1));
    echoes.add(large);
    assert.equal(echoes.size, MAX_OWN_ECHOES);
    assert.ok(large.ratchet.every((b) => b === 0));
    echoes.clear();
    assert.equal(echoes.size, 0);
  });

  it(`holds at most MAX_OWN_ECHO_BYTES (${MAX_OWN_ECHO_BYTES}) of plaintexts, ciphertexts and ratchets`, () => {
    const echoes = new OwnEchoes();
    const plaintext = "p".repeat(MAX_OWN_ECHO_PLAINTEXT);
    const entry = (i: number, size: number) => ({
      roomId: ROOM,
      algorithm: "m.megolm.v1.aes-sha2",
      senderKey: "k",
      sessionId: "s",
      deviceId: "D",
      ciphertext: `${i}:`.padEnd(size, "c"),
      plaintext: plaintext.slice(0, size),
      messageIndex: i,
      ratchet: new Uint8Array(128).fill(1),
    });
    const perEntry = 2 * (MAX_OWN_ECHO_PLAINTEXT + MAX_OWN_ECHO_PLAINTEXT) + 128;
    const fit = Math.floor(MAX_OWN_ECHO_BYTES / perEntry);
    const all = Array.from({ length: fit * 3 }, (_, i) => entry(i, MAX_OWN_ECHO_PLAINTEXT));
    for (const e of all) echoes.add(e);
    assert.equal(echoes.size, fit, "the oldest large entries made room");
    assert.ok(all.slice(0, -fit).every((e) => e.ratchet.every((b) => b === 0)));
    assert.ok(all.slice(-fit).every((e) => e.ratchet.every((b) => b === 1)));
    // Eviction and clear give their bytes back: small entries fill up to the count bound again.
    echoes.clear();
    for (let i = 0; i < MAX_OWN_ECHOES; i++) echoes.add(entry(i, 16));
    assert.equal(echoes.size, MAX_OWN_ECHOES);
  });
});
