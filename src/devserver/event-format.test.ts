import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { describe, it } from "node:test";
import { canonicalJson, computeEventId, redactEvent, verifySignedObject } from "./event-format.ts";
import type { RoomEvent } from "./types.ts";

describe("canonicalJson", () => {
  // Examples from the Matrix specification's appendix on canonical JSON.
  it("matches the spec's examples", () => {
    assert.equal(canonicalJson({}), "{}");
    assert.equal(canonicalJson({ one: 1, two: "Two" }), '{"one":1,"two":"Two"}');
    assert.equal(canonicalJson({ b: "2", a: "1" }), '{"a":"1","b":"2"}');
    assert.equal(
      canonicalJson({
        auth: { success: true, mxid: "@john.doe:example.com", profile: { display_name: "John Doe" } },
      }),
      '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe"},"success":true}}',
    );
    assert.equal(canonicalJson({ a: "日本語" }), '{"a":"日本語"}');
    assert.equal(canonicalJson({ 本: 2, 日: 1 }), '{"日":1,"本":2}');
    assert.equal(canonicalJson({ a: "\u65E5" }), '{"a":"日"}');
    assert.equal(canonicalJson({ a: null }), '{"a":null}');
  });
  it("refuses non-integers", () => {
    assert.throws(() => canonicalJson({ a: 1.5 }), { code: "BAD_NUMBER" });
    assert.throws(() => canonicalJson(2 ** 60), { code: "BAD_NUMBER" });
  });
});

describe("event IDs", () => {
  it("are $ + 43 URL-safe base64 characters and depend on every field", () => {
    const a = computeEventId({ room_id: "!r:x", depth: 1 });
    assert.match(a, /^\$[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a, computeEventId({ room_id: "!r:x", depth: 2 }));
  });
});

describe("verifySignedObject", () => {
  it("accepts a valid signature and rejects tampering", () => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const pub = publicKey
      .export({ format: "der", type: "spki" })
      .subarray(12)
      .toString("base64")
      .replace(/=+$/, "");
    const obj = { user_id: "@a:x", keys: { "ed25519:D": pub } };
    const sig = sign(null, Buffer.from(canonicalJson(obj)), privateKey)
      .toString("base64")
      .replace(/=+$/, "");
    const signed = { ...obj, signatures: { "@a:x": { "ed25519:D": sig } }, unsigned: { ignored: true } };
    assert.equal(verifySignedObject(signed, "@a:x", "ed25519:D", pub), true);
    assert.equal(verifySignedObject({ ...signed, user_id: "@b:x" }, "@a:x", "ed25519:D", pub), false);
    assert.equal(verifySignedObject(signed, "@a:x", "ed25519:E", pub), false);
    assert.equal(verifySignedObject(signed, "@a:x", "ed25519:D", "not base64!"), false);
  });
});

describe("redaction", () => {
  const because: RoomEvent = {
    event_id: "$r",
    room_id: "!r:x",
    sender: "@a:x",
    type: "m.room.redaction",
    content: {},
    origin_server_ts: 2,
  };
  const ev = (type: string, content: Record<string, unknown>, stateKey?: string): RoomEvent => ({
    event_id: "$e",
    room_id: "!r:x",
    sender: "@a:x",
    type,
    content,
    origin_server_ts: 1,
    ...(stateKey !== undefined ? { state_key: stateKey } : {}),
  });
  it("strips message content and records redacted_because", () => {
    const r = redactEvent(ev("m.room.message", { body: "secret", msgtype: "m.text" }), "10", because);
    assert.deepEqual(r.content, {});
    assert.equal((r.unsigned as { redacted_because: RoomEvent }).redacted_because.event_id, "$r");
  });
  it("keeps the keys each room version preserves", () => {
    const pl = { ban: 50, invite: 0, users: {}, custom: 1 };
    assert.deepEqual(redactEvent(ev("m.room.power_levels", pl, ""), "10", because).content, {
      ban: 50,
      users: {},
    });
    assert.deepEqual(redactEvent(ev("m.room.power_levels", pl, ""), "11", because).content, {
      ban: 50,
      invite: 0,
      users: {},
    });
    const create = { creator: "@a:x", room_version: "11", extra: true };
    assert.deepEqual(redactEvent(ev("m.room.create", create, ""), "10", because).content, {
      creator: "@a:x",
    });
    assert.deepEqual(redactEvent(ev("m.room.create", create, ""), "11", because).content, create);
    const member = {
      membership: "join",
      displayname: "A",
      third_party_invite: { signed: { x: 1 }, other: 2 },
    };
    assert.deepEqual(redactEvent(ev("m.room.member", member, "@a:x"), "10", because).content, {
      membership: "join",
    });
    assert.deepEqual(redactEvent(ev("m.room.member", member, "@a:x"), "11", because).content, {
      membership: "join",
      third_party_invite: { signed: { x: 1 } },
    });
  });
});
