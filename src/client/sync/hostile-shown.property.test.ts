// What an application shows of a room comes from the server: its own name or canonical alias, else
// the display name made from the room summary's heroes and their member events, who is typing, who
// read what. Property: whatever a hostile /sync sends there (control and bidirectional characters,
// lone surrogates, invisible characters, huge strings, junk shapes), the room's displayName is
// well-formed, has no control or bidirectional override characters and is bounded; typingUserIds is
// at most MAX_TYPING_USERS distinct user IDs; every room.receipt is of the spec's shape.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isIdentifier, type JsonObject } from "../../wire/index.ts";
import { MemoryClientStore } from "../client-store/index.ts";
import { MAX_ROOM_NAME_MEMBER_CHARS, ROOM_NAME_HEROES } from "../rooms/display-name.ts";
import { MAX_TYPING_USERS } from "../rooms/ephemeral.ts";
import { SCRIPTED_SESSION, scriptedSyncClient } from "../test-support/scripted-sync.ts";

const ROOM = "!r:hs";
/** Characters that make text hostile to show, and a few ordinary ones to build IDs and names of. */
const piece = fc.constantFrom(
  "a",
  "b",
  "@",
  ":",
  "$",
  "hs",
  " ",
  "\u202e",
  "\u2066",
  "\u200b",
  "\u200f",
  "\u0000",
  "\u001b[2J",
  "\u0085",
  "\ud800",
  "\udc00",
  "\ud83d\ude00",
  "\n",
);
const hostileText = fc.oneof(
  { weight: 4, arbitrary: fc.array(piece, { maxLength: 8 }).map((p) => p.join("")) },
  { weight: 1, arbitrary: fc.array(piece, { maxLength: 8 }).map((p) => `@${p.join("")}:hs`) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }).map((i) => `@u${i}:hs`) },
  { weight: 1, arbitrary: fc.constant("x".repeat(MAX_ROOM_NAME_MEMBER_CHARS * 4)) },
);
const userish = fc.oneof(
  hostileText,
  fc.integer({ min: 0, max: 3 }).map((i) => `@u${i}:hs`),
);
const junk = fc.oneof(fc.constant(null), fc.integer(), hostileText, fc.constant([1]));

const member = fc.tuple(userish, fc.oneof(hostileText, junk), fc.nat()).map(([userId, displayname, n]) => ({
  event_id: `$m${n}`,
  type: "m.room.member",
  state_key: userId,
  sender: userId,
  origin_server_ts: 1,
  content: { membership: "join", displayname },
}));

/** The room's own name or canonical alias, of any text or none. */
const ownName = fc
  .tuple(
    fc.constantFrom(["m.room.name", "name"], ["m.room.canonical_alias", "alias"]),
    fc.oneof(
      hostileText,
      hostileText.map((t) => `#${t}`),
      junk,
    ),
    fc.nat(),
  )
  .map(([[type, field], value, n]) => ({
    event_id: `$n${n}`,
    type,
    state_key: "",
    sender: "@u0:hs",
    origin_server_ts: 1,
    content: { [field]: value },
  }));

const receiptContent = fc.dictionary(
  hostileText,
  fc.oneof(
    junk,
    fc.dictionary(
      fc.oneof(fc.constant("m.read"), hostileText),
      fc.oneof(
        junk,
        fc.dictionary(
          userish,
          fc.oneof(
            junk,
            fc.record({ ts: fc.oneof(fc.integer(), junk), thread_id: junk }, { requiredKeys: [] }),
          ),
        ),
      ),
    ),
  ),
);

const room = fc.record(
  {
    summary: fc.record(
      {
        "m.heroes": fc.array(userish, { maxLength: 8 }),
        "m.joined_member_count": fc.integer({ min: 0, max: 1_000 }),
        "m.invited_member_count": fc.integer({ min: 0, max: 3 }),
      },
      { requiredKeys: [] },
    ),
    state: fc
      .array(fc.oneof({ weight: 4, arbitrary: member }, ownName), { maxLength: 8 })
      .map((events) => ({ events })),
    ephemeral: fc
      .array(
        fc.oneof(
          fc
            .oneof(fc.array(fc.oneof(userish, junk), { maxLength: MAX_TYPING_USERS + 5 }), junk)
            .map((user_ids) => ({ type: "m.typing", content: { user_ids } })),
          receiptContent.map((content) => ({ type: "m.receipt", content })),
        ),
        { maxLength: 3 },
      )
      .map((events) => ({ events })),
  },
  { requiredKeys: [] },
);

const UNSHOWN = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;
/** Each named member: their name (or user ID) and perhaps their user ID after it, and the joining words. */
const MAX_DISPLAY_NAME = ROOM_NAME_HEROES * (MAX_ROOM_NAME_MEMBER_CHARS + 255 + 8) + 100;

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

function assertReceiptShape(content: JsonObject): void {
  assert.ok(Object.keys(content).length > 0, "an empty receipt event was emitted");
  for (const [eventId, byType] of Object.entries(content)) {
    assert.ok(isIdentifier(eventId) && eventId.startsWith("$"), `event ID ${JSON.stringify(eventId)}`);
    assert.ok(isObject(byType));
    for (const [type, byUser] of Object.entries(byType)) {
      assert.ok(isIdentifier(type) && isObject(byUser));
      for (const [userId, receipt] of Object.entries(byUser)) {
        assert.ok(isIdentifier(userId) && userId.startsWith("@"), `user ID ${JSON.stringify(userId)}`);
        assert.ok(isObject(receipt));
        const { ts, thread_id: threadId, ...rest } = receipt;
        assert.deepEqual(rest, {});
        assert.ok(ts === undefined || (typeof ts === "number" && Number.isSafeInteger(ts) && ts >= 0));
        assert.ok(threadId === undefined || isIdentifier(threadId));
      }
    }
  }
}

describe("what a client shows of a hostile room, property", () => {
  it("displayName, typingUserIds and receipts are well-formed and bounded", async () => {
    await fc.assert(
      fc.asyncProperty(room, async (r) => {
        const body = JSON.stringify({ next_batch: "s1", rooms: { join: { [ROOM]: r } } });
        const client = await scriptedSyncClient(new MemoryClientStore(), [body]);
        const receipts: JsonObject[] = [];
        client.on("room.receipt", (_room, content) => void receipts.push(content));
        try {
          await client.syncOnce();
          const got = client.getRoom(ROOM);
          assert.ok(got);
          const name = got.displayName;
          assert.ok(name.isWellFormed(), `ill-formed ${JSON.stringify(name)}`);
          assert.ok(!UNSHOWN.test(name), `unshowable ${JSON.stringify(name)}`);
          assert.ok(name.length <= MAX_DISPLAY_NAME, `${name.length} units`);
          const typing = got.typingUserIds;
          assert.ok(typing.length <= MAX_TYPING_USERS);
          assert.equal(new Set(typing).size, typing.length);
          for (const id of typing) assert.ok(isIdentifier(id) && id.startsWith("@"), JSON.stringify(id));
          for (const content of receipts) assertReceiptShape(content);
          assert.ok(!(got.heroes ?? []).includes(SCRIPTED_SESSION.userId));
        } finally {
          await client.close();
        }
      }),
      { numRuns: 300, seed: 0x7e20 },
    );
  });
});
