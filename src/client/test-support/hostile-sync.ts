// Generators of hostile `/sync` response texts, for the fuzz tests of the client against a hostile
// homeserver and hostile room members. A response is built as JSON text by hand, not by
// `JSON.stringify` of a value, so that it can hold what a value cannot: duplicate keys, `-0`,
// numbers past a double's range (`1e400` parses as Infinity), integers past 2^53, and own
// `__proto__` keys. Strings go through `JSON.stringify`, which writes a lone surrogate as its
// `\ud800` escape: `JSON.parse` gives it back as a lone surrogate, as it would from a server.
import fc from "fast-check";

/** JSON text. */
export type Raw = string;

export const text = (s: string): Raw => JSON.stringify(s);
export const obj = (entries: readonly (readonly [string, Raw])[]): Raw =>
  `{${entries.map(([k, v]) => `${text(k)}:${v}`).join(",")}}`;
export const arr = (items: readonly Raw[]): Raw => `[${items.join(",")}]`;

/** Ill-formed UTF-16: unpaired high and low surrogates, a pair in the wrong order. */
export const LONE = ["\ud800", "\udbff", "\udc00", "\udfff", "\udc00\ud800", "\ud83d"] as const;
/** Keys that mean something to a JavaScript object. */
export const OBJECT_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "toJSON"];

const lone = fc.constantFrom(...LONE);
const long = (prefix: string, suffix: string) =>
  fc
    .constantFrom(250, 254, 255, 256, 300, 5_000)
    .map((n) => `${prefix}${"a".repeat(Math.max(0, n - prefix.length - suffix.length))}${suffix}`);

/** A string that is one of `plain` or a hostile variant of one (or a wholly odd one). */
function hostile(plain: readonly string[], sigil: string): fc.Arbitrary<string> {
  const base = fc.constantFrom(...plain);
  return fc.oneof(
    { weight: 12, arbitrary: base },
    { weight: 2, arbitrary: fc.tuple(base, lone).map(([b, l]) => `${b.slice(0, 2)}${l}${b.slice(2)}`) },
    { weight: 1, arbitrary: fc.tuple(base, lone).map(([b, l]) => `${b}${l}`) },
    // U+FFFD, where SQLite puts a lone surrogate: collides with the variants above if one is lost.
    { weight: 1, arbitrary: base.map((b) => `${b.slice(0, 2)}\ufffd${b.slice(2)}`) },
    { weight: 1, arbitrary: base.map((b) => `${b}\u0000x`) },
    { weight: 1, arbitrary: long(sigil, ":hs") },
    { weight: 1, arbitrary: fc.constantFrom("", ...OBJECT_KEYS) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 8 }) },
  );
}

export const USERS = ["@me:hs", "@alice:hs", "@bob:hs"];
export const ROOMS = ["!r1:hs", "!r2:hs", "!r3:hs"];
export const userId = hostile(USERS, "@");
export const roomId = hostile(ROOMS, "!");
export const eventId = hostile(["$e1", "$e2", "$e3", "$e4:hs"], "$");
export const freeText = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.string({ unit: "binary", maxLength: 10 }),
  fc.tuple(fc.string({ maxLength: 4 }), lone).map(([s, l]) => s + l),
  long("", ""),
  fc.constantFrom(...OBJECT_KEYS),
);

/** Numbers as a server may write them: past a double, negative zero, fractions, past 2^53. */
export const number: fc.Arbitrary<Raw> = fc.oneof(
  fc.constantFrom(
    "0",
    "-0",
    "1",
    "-1",
    "1.5",
    "1e308",
    "-1e308",
    "1e400",
    "-1e400",
    "1e-400",
    "9007199254740993",
    "123456789012345678901234567890",
    "604800000",
    "100",
  ),
  fc.integer().map(String),
);

/** Any JSON value, some of them hostile; objects may have duplicate and `__proto__` keys. */
export const value: fc.Arbitrary<Raw> = fc.letrec<{ v: Raw }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    number,
    freeText.map(text),
    fc.constantFrom("null", "true", "false"),
    fc.array(tie("v"), { maxLength: 3 }).map(arr),
    fc
      .array(fc.tuple(fc.oneof(freeText, fc.constantFrom(...OBJECT_KEYS)), tie("v")), { maxLength: 3 })
      .map(obj),
  ),
})).v;

/** Nesting a legal depth deep: the event is level 1, its content level 2, so 126 levels in content. */
export const deep: fc.Arbitrary<Raw> = fc
  .constantFrom(10, 100, 125, 126, 127)
  .chain((n) =>
    fc.constantFrom(
      `${'{"a":'.repeat(n)}1${"}".repeat(n)}`,
      `${"[".repeat(n)}1${"]".repeat(n)}`,
      `${'{"__proto__":'.repeat(n)}{}${"}".repeat(n)}`,
    ),
  );

/** Something where an object is expected. */
export const notObject = fc.constantFrom("[]", "[{}]", "null", "1", '"x"', "true");
/** Mostly `a`; now and then something else (rarely enough that most responses get through). */
export const orOdd = (a: fc.Arbitrary<Raw>) =>
  fc.oneof(
    { weight: 60, arbitrary: a },
    { weight: 1, arbitrary: notObject },
    { weight: 1, arbitrary: value },
  );

/** Mostly `a` (what the field should hold), now and then `odd`. */
export const mostly = (a: fc.Arbitrary<Raw>, odd: fc.Arbitrary<Raw>) =>
  fc.oneof({ weight: 24, arbitrary: a }, { weight: 1, arbitrary: odd });
/** A count as the spec has it (a non-negative integer), or now and then an odd number. */
const count = mostly(fc.nat().map(String), number);
/** A timestamp, or now and then an odd number. */
const timestamp = mostly(fc.integer({ min: 0, max: 2 ** 42 }).map(String), number);
export const list = (item: fc.Arbitrary<Raw>, max = 3) =>
  mostly(fc.array(item, { maxLength: max }).map(arr), fc.oneof(value, notObject));

const MEMBERSHIPS = ["join", "invite", "leave", "ban", "knock", "JOIN", "", "__proto__", "joined"];
const membership = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...MEMBERSHIPS).map(text) },
  { weight: 1, arbitrary: fc.constantFrom("5", "null", '["join"]', '{"join":1}') },
);
const ALGORITHMS = [
  "m.megolm.v1.aes-sha2",
  "m.olm.v1.curve25519-aes-sha2",
  "m.megolm.v2.aes-sha2",
  "",
  "x",
  "__proto__",
];
const algorithm = fc.oneof(
  { weight: 6, arbitrary: fc.constant(text("m.megolm.v1.aes-sha2")) },
  { weight: 4, arbitrary: fc.constantFrom(...ALGORITHMS).map(text) },
  { weight: 1, arbitrary: lone.map((l) => text(`m.megolm.v1.aes-sha2${l}`)) },
  { weight: 1, arbitrary: fc.constantFrom("5", "null", '["m.megolm.v1.aes-sha2"]', "{}") },
);

/** Optional entries, in any order, with a duplicate now and then. */
export function entries(
  fields: readonly (readonly [string, fc.Arbitrary<Raw>])[],
): fc.Arbitrary<[string, Raw][]> {
  return fc
    .tuple(
      ...fields.map(([k, a]) =>
        fc.option(
          a.map((v): [string, Raw] => [k, v]),
          { freq: 20 },
        ),
      ),
      fc.array(fc.tuple(fc.oneof(freeText, fc.constantFrom(...OBJECT_KEYS)), value), { maxLength: 2 }),
      fc.boolean(),
    )
    .map(([...parts]) => {
      const dup = parts.pop() as boolean;
      const extra = parts.pop() as [string, Raw][];
      const out = (parts as ([string, Raw] | null)[]).filter((p): p is [string, Raw] => p !== null);
      out.push(...extra);
      if (dup && out.length > 0) out.push(out[0]!);
      return out;
    });
}

const contentFor: Record<string, fc.Arbitrary<Raw>> = {
  "m.room.member": entries([
    ["membership", membership],
    ["displayname", freeText.map(text)],
    ["avatar_url", freeText.map(text)],
    ["is_direct", value],
  ]).map(obj),
  "m.room.encryption": entries([
    ["algorithm", algorithm],
    ["rotation_period_ms", fc.oneof(number, value)],
    ["rotation_period_msgs", fc.oneof(number, value)],
  ]).map(obj),
  "m.room.create": entries([
    ["room_version", fc.oneof(fc.constantFrom("10", "1").map(text), value)],
    ["predecessor", fc.oneof(entries([["room_id", roomId.map(text)]]).map(obj), value)],
  ]).map(obj),
  "m.room.tombstone": entries([
    ["replacement_room", roomId.map(text)],
    ["body", freeText.map(text)],
  ]).map(obj),
  "m.room.name": entries([["name", freeText.map(text)]]).map(obj),
  "m.room.history_visibility": entries([
    ["history_visibility", fc.constantFrom("shared", "joined", "invited", "world_readable", "x").map(text)],
  ]).map(obj),
  "m.room.encrypted": entries([
    ["algorithm", algorithm],
    ["sender_key", freeText.map(text)],
    ["session_id", freeText.map(text)],
    ["device_id", freeText.map(text)],
    ["ciphertext", fc.oneof(freeText.map(text), value)],
  ]).map(obj),
  "m.typing": entries([["user_ids", list(userId.map(text))]]).map(obj),
  "m.receipt": fc.array(fc.tuple(eventId, value), { maxLength: 2 }).map(obj),
};
const TYPES = Object.keys(contentFor);

export const eventType = fc.oneof(
  // The types whose handling keeps state the stores must keep: more often.
  { weight: 6, arbitrary: fc.constantFrom("m.room.encryption", "m.room.member") },
  { weight: 6, arbitrary: fc.constantFrom(...TYPES, "m.room.message", "m.room.topic") },
  { weight: 1, arbitrary: fc.constantFrom(...TYPES).chain((t) => lone.map((l) => `${t}${l}`)) },
  { weight: 1, arbitrary: fc.constantFrom("", "m.room.member\u0000@me:hs", ...OBJECT_KEYS) },
);

const content = (type: string): fc.Arbitrary<Raw> =>
  fc.oneof(
    {
      weight: 14,
      arbitrary: Object.hasOwn(contentFor, type)
        ? (contentFor[type] as fc.Arbitrary<Raw>)
        : entries([["body", freeText.map(text)]]).map(obj),
    },
    { weight: 1, arbitrary: deep.map((d) => obj([["d", d]])) },
    { weight: 1, arbitrary: notObject },
    { weight: 1, arbitrary: value },
  );

/** A room event (`state`: with a state key). */
export const roomEvent = (state: boolean | "maybe"): fc.Arbitrary<Raw> =>
  eventType.chain((type) =>
    entries([
      ["event_id", mostly(eventId.map(text), number)],
      ["type", fc.constant(text(type))],
      ["sender", userId.map(text)],
      ["origin_server_ts", timestamp],
      ["content", content(type)],
      ["unsigned", mostly(entries([["age", count]]).map(obj), value)],
    ]).chain((fields) =>
      fc
        .oneof(
          { weight: 8, arbitrary: (type === "m.room.member" ? userId : fc.constant("")).map(text) },
          { weight: 4, arbitrary: userId.map(text) },
          { weight: 1, arbitrary: fc.oneof(number, notObject) },
        )
        .map((sk) => {
          // The fields an event needs come first, in full, most of the time.
          const base: [string, Raw][] = [
            ["type", text(type)],
            ["content", fields.find(([k]) => k === "content")?.[1] ?? "{}"],
          ];
          const withKey = state === true || (state === "maybe" && sk.length % 2 === 0);
          if (withKey) base.push(["state_key", sk]);
          return obj([...base, ...fields]);
        }),
    ),
  );

/** Stripped state (invites), or a basic event (account data, ephemeral): no event ID. */
export const strippedEvent: fc.Arbitrary<Raw> = eventType.chain((type) =>
  fc.tuple(content(type), fc.oneof(userId, fc.constant("")), userId).map(([c, sk, sender]) =>
    obj([
      ["type", text(type)],
      ["state_key", text(sk)],
      ["sender", text(sender)],
      ["content", c],
    ]),
  ),
);
export const basicEvent = (types: fc.Arbitrary<string>): fc.Arbitrary<Raw> =>
  types.chain((type) =>
    content(type).map((c) =>
      obj([
        ["type", text(type)],
        ["content", c],
      ]),
    ),
  );

const events = (ev: fc.Arbitrary<Raw>, max = 4): fc.Arbitrary<Raw> =>
  orOdd(
    fc
      .array(fc.oneof({ weight: 6, arbitrary: ev }, { weight: 1, arbitrary: value }), { maxLength: max })
      .map((es) => obj([["events", arr(es)]])),
  );

const notificationCounts = entries([
  ["highlight_count", count],
  ["notification_count", count],
]).map(obj);

/** `m.presence` from any sender (or none), of any state, with its optional fields now and then odd. */
const presenceEvent: fc.Arbitrary<Raw> = fc
  .tuple(
    mostly(userId.map(text), value),
    entries([
      ["presence", mostly(fc.constantFrom("online", "offline", "unavailable").map(text), value)],
      ["last_active_ago", count],
      ["currently_active", mostly(fc.constantFrom("true", "false"), value)],
      ["status_msg", mostly(freeText.map(text), value)],
      ["displayname", mostly(freeText.map(text), value)],
    ]).map(obj),
  )
  .map(([sender, content]) =>
    obj([
      ["type", text("m.presence")],
      ["sender", sender],
      ["content", content],
    ]),
  );

const joinedRoom = orOdd(
  entries([
    ["state", events(roomEvent(true))],
    [
      "timeline",
      orOdd(
        entries([
          ["events", fc.array(roomEvent("maybe"), { maxLength: 5 }).map(arr)],
          ["limited", mostly(fc.constantFrom("true", "false"), value)],
          ["prev_batch", freeText.map(text)],
        ]).map(obj),
      ),
    ],
    ["ephemeral", events(basicEvent(fc.constantFrom("m.typing", "m.receipt")))],
    ["account_data", events(basicEvent(eventType))],
    ["unread_notifications", orOdd(notificationCounts)],
    [
      "unread_thread_notifications",
      orOdd(
        fc
          .array(fc.tuple(eventId, orOdd(notificationCounts)), { maxLength: 3 })
          .map((threads) => obj(threads)),
      ),
    ],
    [
      "summary",
      orOdd(
        entries([
          ["m.heroes", fc.array(userId.map(text), { maxLength: 2 }).map(arr)],
          ["m.joined_member_count", count],
          ["m.invited_member_count", count],
        ]).map(obj),
      ),
    ],
  ]).map(obj),
);
const leftRoom = orOdd(
  entries([
    ["state", events(roomEvent(true))],
    [
      "timeline",
      orOdd(entries([["events", fc.array(roomEvent("maybe"), { maxLength: 4 }).map(arr)]]).map(obj)),
    ],
    ["account_data", events(basicEvent(eventType))],
  ]).map(obj),
);
const invitedRoom = orOdd(entries([["invite_state", events(strippedEvent)]]).map(obj));

/** Rooms from a small pool, so that one room shows up in several sections at once. */
const roomMap = (room: fc.Arbitrary<Raw>, max: number) =>
  orOdd(fc.array(fc.tuple(roomId, room), { maxLength: max }).map(obj));

const TO_DEVICE_TYPES = [
  "m.room_key",
  "m.room.encrypted",
  "m.forwarded_room_key",
  "m.room_key_request",
  "m.room_key.withheld",
  "m.secret.request",
  "m.secret.send",
  "m.key.verification.request",
  "m.dummy",
];
const toDeviceContent = entries([
  ["algorithm", algorithm],
  ["room_id", roomId.map(text)],
  ["session_id", freeText.map(text)],
  ["session_key", freeText.map(text)],
  ["sender_key", freeText.map(text)],
  [
    "ciphertext",
    fc.oneof(
      fc.dictionary(freeText, value, { maxKeys: 2 }).map((d) => obj(Object.entries(d))),
      value,
    ),
  ],
  ["requesting_device_id", freeText.map(text)],
  ["request_id", freeText.map(text)],
  ["action", fc.constantFrom("request", "request_cancellation", "x").map(text)],
  ["code", freeText.map(text)],
  ["transaction_id", freeText.map(text)],
  ["from_device", freeText.map(text)],
  ["methods", list(freeText.map(text), 2)],
  ["timestamp", number],
]).map(obj);
export const toDeviceEvent = fc
  .tuple(fc.oneof(fc.constantFrom(...TO_DEVICE_TYPES), eventType), userId, orOdd(toDeviceContent))
  .map(([type, sender, c]) =>
    obj([
      ["type", text(type)],
      ["sender", text(sender)],
      ["content", c],
    ]),
  );

const ACCOUNT_DATA_TYPES = [
  "m.direct",
  "m.push_rules",
  "m.secret_storage.default_key",
  "m.cross_signing.master",
  "m.megolm_backup.v1",
  "m.ignored_user_list",
];
const accountDataType = fc.oneof(
  fc.constantFrom(...ACCOUNT_DATA_TYPES),
  fc.tuple(fc.constantFrom(...ACCOUNT_DATA_TYPES), lone).map(([t, l]) => `${t}${l}`),
  fc.constantFrom(...ACCOUNT_DATA_TYPES).map((t) => `${t}\ufffd`),
  eventType,
);

/** A hostile `/sync` response's text; `nextBatch` is the token it should carry when well-formed. */
export const hostileSync = (nextBatch: string): fc.Arbitrary<Raw> =>
  entries([
    [
      "rooms",
      orOdd(
        entries([
          ["join", roomMap(joinedRoom, 3)],
          ["invite", roomMap(invitedRoom, 2)],
          ["leave", roomMap(leftRoom, 2)],
          ["knock", roomMap(orOdd(fc.constant("{}")), 1)],
        ]).map(obj),
      ),
    ],
    ["account_data", events(basicEvent(accountDataType))],
    ["presence", events(fc.oneof(presenceEvent, basicEvent(fc.constant("m.presence"))))],
    ["to_device", events(toDeviceEvent, 3)],
    [
      "device_lists",
      orOdd(
        entries([
          ["changed", list(userId.map(text))],
          ["left", list(userId.map(text))],
        ]).map(obj),
      ),
    ],
    [
      "device_one_time_keys_count",
      orOdd(
        fc
          .array(fc.tuple(fc.constantFrom("signed_curve25519", "curve25519", "__proto__"), count), {
            maxLength: 2,
          })
          .map(obj),
      ),
    ],
    ["device_unused_fallback_key_types", list(freeText.map(text), 2)],
  ]).chain((fields) =>
    fc
      .oneof(
        { weight: 30, arbitrary: fc.constant(text(nextBatch)) },
        { weight: 1, arbitrary: lone.map((l) => text(`${nextBatch}${l}`)) },
        { weight: 1, arbitrary: fc.constantFrom('""', "5", "null", "{}") },
      )
      .map((nb) => obj([["next_batch", nb], ...fields])),
  );
