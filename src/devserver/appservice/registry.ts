// The application services registered at start, and how their `as_token` authenticates: as the
// sender user, or as any registered user of the namespace (`user_id`), on one of that user's
// devices (`device_id`, or MSC3202's `org.matrix.msc3202.device_id`).
import { timingSafeEqual } from "node:crypto";
import {
  Namespaces,
  QUERY_DEVICE_ID,
  QUERY_DEVICE_ID_UNSTABLE,
  type Registration,
  RegistrationError,
} from "../../wire/appservice.ts";
import { forbidden, MatrixError } from "../errors.ts";
import type { Authed } from "../types.ts";

/** One registered appservice. */
export interface Appservice {
  readonly reg: Registration;
  readonly ns: Namespaces;
  /** `@sender_localpart:server`. */
  readonly sender: string;
}

/** Most appservices one devserver takes. */
export const MAX_APPSERVICES = 100;

export class AppserviceRegistry {
  readonly list: readonly Appservice[];
  readonly #serverName: string;

  constructor(regs: readonly Registration[], serverName: string) {
    if (regs.length > MAX_APPSERVICES) {
      throw new RegistrationError("INVALID", `more than ${MAX_APPSERVICES} appservices`);
    }
    const seen = new Set<string>();
    for (const r of regs) {
      // Two registrations with one ID or one token would make every lookup ambiguous.
      for (const key of [`id:${r.id}`, `as:${r.as_token}`]) {
        if (seen.has(key))
          throw new RegistrationError("INVALID", `two appservices share an id or as_token (${r.id})`);
        seen.add(key);
      }
    }
    this.#serverName = serverName;
    this.list = regs.map((reg) => ({
      reg,
      ns: new Namespaces(reg),
      sender: `@${reg.sender_localpart}:${serverName}`,
    }));
  }

  /** The appservice whose `as_token` this is (compared in constant time), if any. */
  byToken(token: string): Appservice | undefined {
    const given = Buffer.from(token);
    let found: Appservice | undefined;
    for (const as of this.list) {
      const mine = Buffer.from(as.reg.as_token);
      if (mine.length === given.length && timingSafeEqual(mine, given)) found = as;
    }
    return found;
  }

  /** Whether `userId` is this appservice's to act as: its sender, or a local user of its namespaces. */
  controls(as: Appservice, userId: string): boolean {
    return userId === as.sender || (userId.endsWith(`:${this.#serverName}`) && as.ns.matchesUser(userId));
  }

  /** The appservice holding `userId` in an exclusive namespace, if any. */
  exclusiveOwner(userId: string): Appservice | undefined {
    return this.list.find((as) => userId === as.sender || as.ns.matchesUser(userId, true));
  }
  exclusiveAliasOwner(alias: string): Appservice | undefined {
    return this.list.find((as) => as.ns.matchesAlias(alias, true));
  }
}

export interface AccountLookup {
  userExists(userId: string): boolean;
  deviceExists(userId: string, deviceId: string): boolean;
}

/**
 * Who an `as_token` request acts as. `allowUnregistered` is for registration, which names a user
 * that does not exist yet. Without a device parameter the request has no device (`deviceId` "").
 */
export function appserviceAuth(
  registry: AppserviceRegistry,
  as: Appservice,
  token: string,
  query: URLSearchParams,
  accounts: AccountLookup,
  allowUnregistered: boolean,
): Authed {
  const userId = query.get("user_id") ?? as.sender;
  if (!registry.controls(as, userId)) {
    throw forbidden("Application service cannot masquerade as this user");
  }
  if (!allowUnregistered && !accounts.userExists(userId)) {
    throw forbidden("Application service has not registered this user");
  }
  const deviceId = query.get(QUERY_DEVICE_ID) ?? query.get(QUERY_DEVICE_ID_UNSTABLE) ?? "";
  if (deviceId !== "" && !accounts.deviceExists(userId, deviceId)) {
    throw new MatrixError(
      400,
      "M_UNKNOWN_DEVICE",
      "Application service trying to use a device that does not exist",
    );
  }
  return { userId, deviceId, token, appserviceId: as.reg.id };
}
