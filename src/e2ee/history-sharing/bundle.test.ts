import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import { InboundGroupSession } from "../../crypto/megolm/index.ts";
import { utf8Encode } from "../../crypto/primitives/index.ts";
import type { InboundGroupSessionRecord } from "../../store/records.ts";
import {
  buildRoomKeyBundle,
  HistorySharingError,
  parseRoomKeyBundle,
  parseRoomKeyBundleContent,
} from "./bundle.ts";

// libolm's Megolm session from fixed randomness (test/vectors/megolm/libolm-megolm.json).
const megolm = JSON.parse(
  readFileSync(new URL("../../../test/vectors/megolm/libolm-megolm.json", import.meta.url), "utf8"),
) as { sessionId: string; exports: { index: number; key: string }[] };
const exportAt1 = megolm.exports.find((e) => e.index === 1)?.key ?? "";
const ROOM = "!Cuyf34gef24t:localhost";

function record(sessionId: string, extra: Partial<InboundGroupSessionRecord>): InboundGroupSessionRecord {
  return {
    roomId: ROOM,
    sessionId,
    senderKey: "RF3s+E7RkTQTGF2d8Deol0FkQvgII2aJDf3/Jp5mxVU",
    senderClaimedEd25519: "aj40p+aw64yPIdsxoog8jhPu9i7l7NcFRecuOQblE3Y",
    firstKnownIndex: 1,
    pickle: InboundGroupSession.fromExport(exportAt1).toPickle(),
    imported: false,
    forwarded: false,
    forwardingChain: [],
    backedUp: false,
    ...extra,
  };
}

describe("room key bundle (MSC4268) wire format", () => {
  it("known answer: shareable sessions with libolm's export bytes in room_keys, the rest withheld", () => {
    const bundle = buildRoomKeyBundle(ROOM, [
      record(megolm.sessionId, { sharedHistory: true }),
      record("notShared", {}),
      { ...record("otherRoom", { sharedHistory: true }), roomId: "!other:localhost" },
    ]);
    // Field for field the spec's RoomKeyBundle (data/api/client-server/definitions/room_key_bundle.yaml).
    assert.equal(
      JSON.stringify(bundle),
      JSON.stringify({
        room_keys: [
          {
            algorithm: "m.megolm.v1.aes-sha2",
            room_id: ROOM,
            sender_claimed_keys: { ed25519: "aj40p+aw64yPIdsxoog8jhPu9i7l7NcFRecuOQblE3Y" },
            sender_key: "RF3s+E7RkTQTGF2d8Deol0FkQvgII2aJDf3/Jp5mxVU",
            session_id: "1L/H5uKlCVGen2xQQtyWdVwUkwTCHknIih5Z3il8v7k",
            session_key: exportAt1,
          },
        ],
        withheld: [
          {
            algorithm: "m.megolm.v1.aes-sha2",
            code: "m.history_not_shared",
            reason: "History not shared",
            room_id: ROOM,
            sender_key: "RF3s+E7RkTQTGF2d8Deol0FkQvgII2aJDf3/Jp5mxVU",
            session_id: "notShared",
          },
        ],
      }),
    );
    // Read back: the room's keys as export entries, shareable, with no forwarding chain.
    const keys = parseRoomKeyBundle(utf8Encode(JSON.stringify(bundle)), ROOM);
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.session_key, exportAt1);
    assert.equal(keys[0]?.shared_history, true);
    assert.deepEqual(keys[0]?.forwarding_curve25519_key_chain, []);
    assert.deepEqual(parseRoomKeyBundle(utf8Encode(JSON.stringify(bundle)), "!other:localhost"), []);
  });

  it("reads the spec's m.room_key_bundle example; refuses a non-mxc file or a missing room", () => {
    // data/event-schemas/examples/m.room_key_bundle.yaml (matrix-spec v1.19).
    const example = {
      room_id: "!Cuyf34gef24t:localhost",
      file: {
        v: "v2",
        url: "mxc://example.org/FHyPlCeYUSFFxlgbQYZmoEoe",
        key: {
          alg: "A256CTR",
          ext: true,
          k: "aWF6-32KGYaC3A_FEUCk1Bt0JA37zP0wrStgmdCaW-0",
          key_ops: ["encrypt", "decrypt"],
          kty: "oct",
        },
        iv: "w+sE15fzSc0AAAAAAAAAAA",
        hashes: { sha256: "fdSLu/YkRx3Wyh3KQabP3rd6+SFiKg5lsJZQHtkSAYA" },
      },
    };
    const parsed = parseRoomKeyBundleContent(example);
    assert.equal(parsed?.roomId, example.room_id);
    assert.equal(parsed?.file.url, example.file.url);
    assert.equal(
      parseRoomKeyBundleContent({ ...example, file: { ...example.file, url: "https://x" } }),
      undefined,
    );
    assert.equal(parseRoomKeyBundleContent({ file: example.file }), undefined);
    assert.equal(parseRoomKeyBundleContent({ ...example, room_id: "#alias:x" }), undefined);
  });

  it("a bundle that is not JSON or has no room_keys is BAD_BUNDLE; decoders throw nothing else", () => {
    const code = (bytes: Uint8Array) => {
      try {
        parseRoomKeyBundle(bytes, ROOM);
        return "ok";
      } catch (e) {
        if (e instanceof HistorySharingError) return e.code;
        throw e;
      }
    };
    assert.equal(code(utf8Encode("not json")), "BAD_BUNDLE");
    assert.equal(code(utf8Encode('{"withheld":[]}')), "BAD_BUNDLE");
    assert.equal(code(new Uint8Array([0xff, 0xfe])), "BAD_BUNDLE");
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        code(utf8Encode(JSON.stringify({ room_keys: [v, { room_id: ROOM, v }] })));
        code(utf8Encode(JSON.stringify(v) ?? "null"));
        parseRoomKeyBundleContent(v);
        parseRoomKeyBundleContent({ room_id: ROOM, file: v });
      }),
      { numRuns: 300 },
    );
  });
});
