// Generators of hostile appservice transactions (`PUT /_matrix/app/v1/transactions/{txnId}`), for
// the fuzz test of an `Appservice` against a hostile or buggy homeserver. Built as JSON text, as the
// `/sync` generators of ../../client/test-support/hostile-sync.ts are (whose pieces they reuse), so
// that a body can hold duplicate keys, `-0`, `1e400`, lone surrogates and own `__proto__` keys.
import fc from "fast-check";
import {
  arr,
  basicEvent,
  entries,
  freeText,
  LONE,
  list,
  mostly,
  notObject,
  number,
  OBJECT_KEYS,
  obj,
  orOdd,
  type Raw,
  roomEvent,
  roomId,
  strippedEvent,
  text,
  toDeviceEvent,
  userId,
  value,
} from "../../client/test-support/hostile-sync.ts";

/** The virtual users the tests start (in the namespace), their device, and one outside it. */
export const VIRTUAL_USERS = ["@me:hs", "@alice:hs"] as const;
export const DEVICE_ID = "DEV";
export const OUTSIDER = "@bob:hs";

/** `raw` (a JSON object's text) with `fields` first (a second copy of a key, when it has one). */
export function withFields(raw: Raw, fields: readonly (readonly [string, Raw])[]): Raw {
  if (fields.length === 0) return raw;
  const head = fields.map(([k, v]) => `${text(k)}:${v}`).join(",");
  return raw === "{}" ? `{${head}}` : `{${head},${raw.slice(1)}`;
}

/** A room ID where a transaction names one: mostly the generators' rooms, now and then none or odd. */
const eventRoom: fc.Arbitrary<readonly (readonly [string, Raw])[]> = fc.oneof(
  { weight: 12, arbitrary: roomId.map((r) => [["room_id", text(r)] as const]) },
  { weight: 1, arbitrary: fc.constant([]) },
  { weight: 1, arbitrary: fc.oneof(number, notObject).map((v) => [["room_id", v] as const]) },
);

const MEMBERSHIPS = ["join", "join", "join", "invite", "leave", "ban", "knock", "JOIN", ""];

/**
 * A virtual user's own membership event (what brings rooms to its client), in a room of the pool
 * or a hostile one, an invite with stripped state that may be anything.
 */
const ownMembership: fc.Arbitrary<Raw> = fc
  .tuple(
    fc.constantFrom(...VIRTUAL_USERS, ...VIRTUAL_USERS, OUTSIDER),
    fc.constantFrom(...MEMBERSHIPS),
    // Rooms keyed like Object.prototype's members more often than the pool's generator has them.
    fc.oneof({ weight: 8, arbitrary: roomId }, { weight: 1, arbitrary: fc.constantFrom(...OBJECT_KEYS) }),
    fc.nat(),
    fc.option(
      fc.oneof(
        { weight: 4, arbitrary: fc.array(strippedEvent, { maxLength: 3 }).map(arr) },
        { weight: 1, arbitrary: fc.oneof(value, notObject) },
      ),
      { freq: 3 },
    ),
  )
  .map(([user, membership, room, n, stripped]) =>
    obj([
      ["type", text("m.room.member")],
      ["state_key", text(user)],
      ["sender", text(user)],
      ["room_id", text(room)],
      ["event_id", text(`$own${n}`)],
      ["origin_server_ts", String(n)],
      ["content", obj([["membership", text(membership)]])],
      ...(stripped === null ? [] : [["unsigned", obj([["invite_room_state", stripped]])] as const]),
    ]),
  );

/**
 * A virtual user's join to a room of the pool and the room's m.room.encryption after it (two
 * events, the hostile ones seldom landing in a room a user joined).
 */
const encryption: fc.Arbitrary<Raw> = fc
  .tuple(fc.constantFrom(...VIRTUAL_USERS), fc.constantFrom("!r1:hs", "!r3:hs"), fc.nat())
  .map(([user, room, n]) => [
    obj([
      ["type", text("m.room.member")],
      ["state_key", text(user)],
      ["sender", text(user)],
      ["room_id", text(room)],
      ["event_id", text(`$join${n}`)],
      ["origin_server_ts", String(n)],
      ["content", obj([["membership", text("join")]])],
    ]),
    obj([
      ["type", text("m.room.encryption")],
      ["state_key", text("")],
      ["sender", text("@alice:hs")],
      ["room_id", text(room)],
      ["event_id", text(`$enc${n}`)],
      ["origin_server_ts", String(n)],
      ["content", obj([["algorithm", text("m.megolm.v1.aes-sha2")]])],
    ]),
  ])
  // Two items of the list the event goes in.
  .map((events) => events.join(","));

/**
 * A timeline event of a transaction: a room event with its room, a virtual user's membership, or
 * a room's encryption.
 */
export const txnEvent: fc.Arbitrary<Raw> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(roomEvent("maybe"), eventRoom).map(([e, r]) => withFields(e, r)) },
  { weight: 4, arbitrary: ownMembership },
  { weight: 2, arbitrary: encryption },
  { weight: 1, arbitrary: value },
);

const ephemeralEvent: fc.Arbitrary<Raw> = fc
  .tuple(basicEvent(fc.constantFrom("m.typing", "m.receipt", "m.presence")), eventRoom)
  .map(([e, r]) => withFields(e, r));

const deviceId = fc.oneof(
  { weight: 6, arbitrary: fc.constant(DEVICE_ID) },
  { weight: 1, arbitrary: fc.constantFrom("OTHER", "", "dev", `${DEVICE_ID}\u0000`) },
  { weight: 1, arbitrary: fc.constantFrom(...LONE).map((l) => `${DEVICE_ID}${l}`) },
  { weight: 1, arbitrary: freeText },
);
/** A recipient: a virtual user, one of the namespace not started, one outside it, or odd. */
const recipient = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...VIRTUAL_USERS) },
  { weight: 2, arbitrary: fc.constantFrom(OUTSIDER, "@me:elsewhere", "@me:hs:hs") },
  { weight: 2, arbitrary: userId },
);

/** An MSC4203 to-device message: a sync's to-device event with a recipient user and device. */
const toDeviceMessage: fc.Arbitrary<Raw> = fc
  .tuple(toDeviceEvent, mostly(recipient.map(text), value), mostly(deviceId.map(text), value))
  .map(([e, u, d]) =>
    withFields(e, [
      ["to_user_id", u],
      ["to_device_id", d],
    ]),
  );

/** A map of users to devices to `leaf`, the users and devices mostly ours. */
const perDevice = (leaf: fc.Arbitrary<Raw>): fc.Arbitrary<Raw> =>
  orOdd(
    fc
      .array(
        fc.tuple(
          fc.oneof(recipient, fc.constantFrom(...OBJECT_KEYS)),
          orOdd(fc.array(fc.tuple(deviceId, leaf), { maxLength: 2 }).map(obj)),
        ),
        { maxLength: 3 },
      )
      .map(obj),
  );

/** A count: mostly a small count, now and then negative, fractional, huge, `1e400` or not a number. */
const keyCount = fc.oneof(
  { weight: 100, arbitrary: fc.nat(100).map(String) },
  { weight: 2, arbitrary: number },
  { weight: 1, arbitrary: fc.oneof(value, notObject) },
);
const otkCounts = perDevice(
  orOdd(
    fc
      .array(
        fc.tuple(fc.constantFrom("signed_curve25519", "curve25519", "__proto__", "", "\ud800"), keyCount),
        { maxLength: 2 },
      )
      .map(obj),
  ),
);
const fallbackTypes = perDevice(
  list(fc.oneof(fc.constantFrom("signed_curve25519", "curve25519", "__proto__", ""), freeText).map(text), 2),
);
const listedUser = fc.oneof(
  { weight: 100, arbitrary: userId.map(text) },
  { weight: 1, arbitrary: fc.oneof(number, notObject) },
);
const deviceLists = orOdd(
  entries([
    ["changed", list(listedUser)],
    ["left", list(listedUser)],
  ]).map(obj),
);

/** `item` repeated up to the transaction bound, at it, or one past it. */
const huge = (item: fc.Arbitrary<Raw>, bound: number): fc.Arbitrary<Raw> =>
  fc
    .tuple(item, fc.constantFrom(bound - 1, bound, bound + 1))
    .map(([one, n]) => `[${Array.from({ length: n }, () => one).join(",")}]`);

/** A list of `item`, mostly short, now and then huge (`hugeBound`: how long a huge one is). */
const items = (item: fc.Arbitrary<Raw>, max: number, hugeBound: number | undefined): fc.Arbitrary<Raw> =>
  fc.oneof(
    { weight: 40, arbitrary: fc.array(item, { maxLength: max }).map(arr) },
    ...(hugeBound === undefined ? [] : [{ weight: 10, arbitrary: huge(item, hugeBound) }]),
    { weight: 1, arbitrary: fc.oneof(value, notObject) },
  );

/**
 * A hostile transaction body. `hugeBound` (the transaction's event bound) lets lists now and then
 * be that long, or one longer.
 */
export const hostileTransaction = (hugeBound?: number): fc.Arbitrary<Raw> =>
  fc
    .tuple(
      entries([
        ["ephemeral", items(ephemeralEvent, 3, hugeBound)],
        ["de.sorunome.msc2409.ephemeral", items(ephemeralEvent, 2, undefined)],
        ["de.sorunome.msc2409.to_device", items(toDeviceMessage, 3, hugeBound)],
      ]),
      // MSC3202's fields, in one transaction out of two (a malformed one refuses the transaction).
      fc.option(
        entries([
          ["org.matrix.msc3202.device_lists", deviceLists],
          ["org.matrix.msc3202.device_one_time_keys_count", otkCounts],
          ["org.matrix.msc3202.device_one_time_key_counts", otkCounts],
          ["org.matrix.msc3202.device_unused_fallback_key_types", fallbackTypes],
        ]),
        { freq: 2 },
      ),
    )
    .map(([core, msc3202]) => [...core, ...(msc3202 ?? [])])
    .chain((fields) =>
      fc
        .oneof(
          { weight: 30, arbitrary: items(txnEvent, 6, hugeBound) },
          { weight: 1, arbitrary: fc.constantFrom("null", "{}", '"x"') },
        )
        .chain((events) =>
          // Now and then no events at all (the one field a transaction must have).
          fc.oneof(
            { weight: 30, arbitrary: fc.constant(obj([["events", events], ...fields])) },
            { weight: 1, arbitrary: fc.constant(obj(fields)) },
            { weight: 1, arbitrary: fc.constantFrom("[]", "null", "", "{", '{"events":[]}x') },
          ),
        ),
    );

/**
 * A transaction ID as it appears in the path, percent-encoded or not: mostly plain, now and then
 * empty, overlong, with control characters, a lone surrogate (as UTF-8 of one, or an escape no
 * UTF-8 decodes), slashes, dots or object keys.
 */
export const txnIdSegment: fc.Arbitrary<string> = fc.oneof(
  { weight: 20, arbitrary: fc.nat(1_000_000).map((n) => `t${n}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "",
      "%00",
      "%0A",
      "%7F",
      "%ED%A0%80",
      "%",
      "%zz",
      "%2F",
      "a%2Fb",
      ".",
      "..",
      "%2E%2E",
      "__proto__",
      "constructor",
      "%C2%85",
      "%F0%9F%98%80",
      "x".repeat(255),
      "x".repeat(256),
      "%E2%80%AE",
    ),
  },
  {
    weight: 1,
    arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 6 }).map(encodeURIComponentSafe),
  },
);

function encodeURIComponentSafe(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return "%ED%B0%80";
  }
}
