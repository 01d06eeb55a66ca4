// Application Service API wire formats, shared by the devserver (which pushes transactions) and
// `keyroom/appservice` (which receives them): the registration file, namespaces, and the
// transaction body with the E2EE fields (MSC2409/MSC4203 to-device and ephemeral, MSC3202 device
// lists and key counts) under the unstable names Synapse sends and the unprefixed ones.
import { parse as parseYaml } from "yaml";
import { boundedDepth, clientEventSchema, toDeviceEventShape } from "./events.ts";
import { jsonObjectSchema, lenientArray, lenientRecord } from "./json.ts";
import * as z from "./zod.ts";

/** Registration flags (the keys Synapse reads). */
export const REG_RECEIVE_EPHEMERAL = "receive_ephemeral";
/** MSC2409's unstable flag: the transaction then carries `de.sorunome.msc2409.ephemeral`. */
export const REG_PUSH_EPHEMERAL_UNSTABLE = "de.sorunome.msc2409.push_ephemeral";
/** MSC3202's flag: device lists and one-time/fallback key data in transactions. */
export const REG_MSC3202 = "org.matrix.msc3202";

/** Transaction fields. */
export const TXN_EPHEMERAL = "ephemeral";
export const TXN_EPHEMERAL_UNSTABLE = "de.sorunome.msc2409.ephemeral";
/** To-device messages (MSC4203; Synapse keeps MSC2409's prefix for it). */
export const TXN_TO_DEVICE = "de.sorunome.msc2409.to_device";
export const TXN_DEVICE_LISTS = "org.matrix.msc3202.device_lists";
/** One-time key counts: MSC3202 names it one way, Synapse sends both spellings. */
export const TXN_OTK_COUNTS = "org.matrix.msc3202.device_one_time_keys_count";
export const TXN_OTK_COUNTS_ALT = "org.matrix.msc3202.device_one_time_key_counts";
export const TXN_FALLBACK_KEYS = "org.matrix.msc3202.device_unused_fallback_key_types";
/**
 * The same data under the names without a prefix, which newer homeservers may send (mautrix-go
 * reads them too); read first when both are present, with the same bounds.
 */
export const TXN_TO_DEVICE_STABLE = "to_device";
export const TXN_DEVICE_LISTS_STABLE = "device_lists";
export const TXN_OTK_COUNTS_STABLE = "device_one_time_keys_count";
export const TXN_FALLBACK_KEYS_STABLE = "device_unused_fallback_key_types";

export { QUERY_DEVICE_ID, QUERY_DEVICE_ID_UNSTABLE } from "./appservice-query.ts";

/** The login and registration type of appservice users. */
export const LOGIN_TYPE_APPSERVICE = "m.login.application_service";

/** Longest namespace regex accepted (they are compiled and run on every event). */
export const MAX_NAMESPACE_REGEX_LENGTH = 1024;
/** Most namespace entries of one kind (users, aliases, rooms) in a registration. */
export const MAX_NAMESPACES_PER_KIND = 100;

const namespaceSchema = z.object({
  exclusive: z.boolean(),
  regex: z.string().check(z.minLength(1), z.maxLength(MAX_NAMESPACE_REGEX_LENGTH)),
});
export type Namespace = z.infer<typeof namespaceSchema>;

const namespaceListSchema = z.array(namespaceSchema).check(z.maxLength(MAX_NAMESPACES_PER_KIND));

const LOCALPART_RE = /^[a-z0-9._=\-/+]+$/;

export const registrationSchema = z.looseObject({
  id: z.string().check(z.minLength(1), z.maxLength(255)),
  /** Where transactions go; `null` for an appservice that only talks to the homeserver. */
  url: z.nullable(z.string().check(z.url())),
  as_token: z.string().check(z.minLength(1), z.maxLength(1024)),
  hs_token: z.string().check(z.minLength(1), z.maxLength(1024)),
  sender_localpart: z.string().check(z.minLength(1), z.maxLength(255), z.regex(LOCALPART_RE)),
  namespaces: z.object({
    users: z.optional(namespaceListSchema),
    aliases: z.optional(namespaceListSchema),
    rooms: z.optional(namespaceListSchema),
  }),
  rate_limited: z.optional(z.boolean()),
  protocols: z.optional(z.array(z.string())),
  [REG_RECEIVE_EPHEMERAL]: z.optional(z.boolean()),
  [REG_PUSH_EPHEMERAL_UNSTABLE]: z.optional(z.boolean()),
  [REG_MSC3202]: z.optional(z.boolean()),
});
export type Registration = z.infer<typeof registrationSchema>;

export class RegistrationError extends Error {
  override readonly name = "RegistrationError";
  readonly code: "NOT_PARSEABLE" | "INVALID" | "BAD_REGEX";
  constructor(code: RegistrationError["code"], message: string) {
    super(message);
    this.code = code;
  }
}

/** Parses a registration file (YAML, of which JSON is a subset) and checks it, regexes included. */
export function parseRegistration(text: string): Registration {
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 0 });
  } catch (e) {
    throw new RegistrationError(
      "NOT_PARSEABLE",
      `not YAML or JSON: ${e instanceof Error ? e.name : "error"}`,
    );
  }
  const parsed = registrationSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new RegistrationError(
      "INVALID",
      `invalid registration: ${first ? `${first.path.join(".") || "(root)"}: ${first.message}` : "bad shape"}`,
    );
  }
  // Compiling every regex now reports a bad one at start, not on the first event.
  new Namespaces(parsed.data);
  return parsed.data;
}

/** The compiled namespaces of one registration. */
export class Namespaces {
  readonly #users: { re: RegExp; exclusive: boolean }[];
  readonly #aliases: { re: RegExp; exclusive: boolean }[];
  readonly #rooms: { re: RegExp; exclusive: boolean }[];

  constructor(reg: Pick<Registration, "namespaces">) {
    this.#users = compile(reg.namespaces.users);
    this.#aliases = compile(reg.namespaces.aliases);
    this.#rooms = compile(reg.namespaces.rooms);
  }

  /** Whether `userId` is in a user namespace (`exclusive` narrows to exclusive ones). */
  matchesUser(userId: string, exclusive = false): boolean {
    return matches(this.#users, userId, exclusive);
  }
  matchesAlias(alias: string, exclusive = false): boolean {
    return matches(this.#aliases, alias, exclusive);
  }
  matchesRoom(roomId: string, exclusive = false): boolean {
    return matches(this.#rooms, roomId, exclusive);
  }
}

// Synapse matches a namespace regex from the start of the ID (Python's `re.match`); so does this.
function compile(list: readonly Namespace[] | undefined): { re: RegExp; exclusive: boolean }[] {
  return (list ?? []).map((ns) => {
    try {
      return { re: new RegExp(`^(?:${ns.regex})`, "u"), exclusive: ns.exclusive };
    } catch {
      throw new RegistrationError("BAD_REGEX", `namespace regex does not compile: ${ns.regex}`);
    }
  });
}

function matches(list: { re: RegExp; exclusive: boolean }[], id: string, exclusive: boolean): boolean {
  return list.some((ns) => (!exclusive || ns.exclusive) && ns.re.test(id));
}

// ---- ping (`POST /_matrix/client/v1/appservice/{appserviceId}/ping`) ----

/** What the homeserver answers when it reached the appservice's `/_matrix/app/v1/ping`. */
export const appservicePingResponseSchema = z.looseObject({
  duration_ms: z.number().check(z.int(), z.nonnegative()),
});

// ---- transactions ----

/** Most events of each kind in one transaction the receiving side accepts. */
export const MAX_TXN_EVENTS = 10_000;

/** A to-device message addressed to one appservice device (MSC4203 adds the recipient). */
export const appserviceToDeviceSchema = z
  .looseObject({
    ...toDeviceEventShape,
    to_user_id: z.string().check(z.minLength(1)),
    to_device_id: z.string().check(z.minLength(1)),
  })
  .check(boundedDepth);
export type AppserviceToDevice = z.infer<typeof appserviceToDeviceSchema>;

/** An ephemeral event (typing, receipt, presence) with the room it belongs to. */
export const appserviceEphemeralSchema = z
  .looseObject({
    type: z.string().check(z.minLength(1)),
    room_id: z.optional(z.string().check(z.minLength(1))),
    content: jsonObjectSchema,
  })
  .check(boundedDepth);
export type AppserviceEphemeral = z.infer<typeof appserviceEphemeralSchema>;

const boundedLenient = <T extends z.ZodMiniType>(item: T) =>
  z.pipe(z.array(z.unknown()).check(z.maxLength(MAX_TXN_EVENTS)), lenientArray(item));

// MSC3202 maps, by user then device: a malformed entry is dropped (that device then reads as
// unchanged since the last transaction), so one bad count cannot make the homeserver retry the
// whole transaction for ever; the maps themselves must be maps.
// A device's counts are taken whole or not at all: a map missing an algorithm means a count of 0.
const countsSchema = lenientRecord(
  lenientRecord(z.record(z.string(), z.number().check(z.int(), z.nonnegative()))),
);
const fallbackSchema = lenientRecord(lenientRecord(lenientArray(z.string())));
const userIdsSchema = z.optional(lenientArray(z.string()));
const deviceListsSchema = z.object({ changed: userIdsSchema, left: userIdsSchema });

/**
 * The transaction body. The envelope must be well-formed; a malformed event inside a list is
 * dropped (as in sync), so one bad event cannot make the homeserver retry the whole transaction.
 */
export const transactionSchema = z.looseObject({
  events: boundedLenient(clientEventSchema),
  [TXN_EPHEMERAL]: z.optional(boundedLenient(appserviceEphemeralSchema)),
  [TXN_EPHEMERAL_UNSTABLE]: z.optional(boundedLenient(appserviceEphemeralSchema)),
  [TXN_TO_DEVICE]: z.optional(boundedLenient(appserviceToDeviceSchema)),
  [TXN_TO_DEVICE_STABLE]: z.optional(boundedLenient(appserviceToDeviceSchema)),
  [TXN_DEVICE_LISTS]: z.optional(deviceListsSchema),
  [TXN_DEVICE_LISTS_STABLE]: z.optional(deviceListsSchema),
  [TXN_OTK_COUNTS]: z.optional(countsSchema),
  [TXN_OTK_COUNTS_ALT]: z.optional(countsSchema),
  [TXN_OTK_COUNTS_STABLE]: z.optional(countsSchema),
  [TXN_FALLBACK_KEYS]: z.optional(fallbackSchema),
  [TXN_FALLBACK_KEYS_STABLE]: z.optional(fallbackSchema),
});
export type TransactionBody = z.output<typeof transactionSchema>;
