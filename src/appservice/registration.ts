// Registration files: generating one (fresh random tokens, namespaces from a user prefix) and
// writing it as YAML for the homeserver's configuration (Synapse's `app_service_config_files`).
import { stringify } from "yaml";
import { encodeBase64Url, randomBytes } from "../crypto/primitives/index.ts";
import {
  type Namespace,
  parseRegistration,
  REG_MSC3202,
  REG_PUSH_EPHEMERAL_UNSTABLE,
  REG_RECEIVE_EPHEMERAL,
  type Registration,
} from "../wire/appservice.ts";

export { parseRegistration, type Registration };

/**
 * MSC4190's flag (Synapse's name): the appservice manages its users' devices, creating them with
 * `PUT /devices/{deviceId}` and deleting them, or replacing the users' cross-signing keys, without
 * User-Interactive Auth (its users have no password). Keyroom's virtual users are set up that way.
 */
export const REG_MSC4190 = "io.element.msc4190";

export interface GenerateRegistrationOptions {
  /** Unique ID of the appservice on the homeserver. */
  id: string;
  /** Where the homeserver sends transactions (this process's listener), or null for none. */
  url: string | null;
  /** Localpart of the appservice's own user (its "bot"). */
  senderLocalpart: string;
  /** The homeserver's server name, for the namespace regexes. */
  serverName: string;
  /** Localpart prefix of the virtual users (e.g. `_bridge_`): `@_bridge_.*:server`, exclusive. */
  userPrefix?: string;
  /** Alias prefix (e.g. `_bridge_`): `#_bridge_.*:server`, exclusive. */
  aliasPrefix?: string;
  /** Extra namespaces, added as given. */
  namespaces?: { users?: Namespace[]; aliases?: Namespace[]; rooms?: Namespace[] };
  /**
   * Ask for the E2EE data in transactions (to-device, ephemeral, device lists and key counts):
   * default true, since virtual users encrypt.
   */
  encryption?: boolean;
  /** Default false: appservice traffic is usually not rate limited. */
  rateLimited?: boolean;
}

/** Regex-escapes a literal (server names have dots). */
function literal(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A new registration with fresh 256-bit `as_token` and `hs_token`. */
export function generateRegistration(opts: GenerateRegistrationOptions): Registration {
  const server = literal(opts.serverName);
  const users: Namespace[] = [...(opts.namespaces?.users ?? [])];
  if (opts.userPrefix !== undefined) {
    users.push({ exclusive: true, regex: `@${literal(opts.userPrefix)}.*:${server}` });
  }
  const aliases: Namespace[] = [...(opts.namespaces?.aliases ?? [])];
  if (opts.aliasPrefix !== undefined) {
    aliases.push({ exclusive: true, regex: `#${literal(opts.aliasPrefix)}.*:${server}` });
  }
  const e2ee = opts.encryption ?? true;
  const raw = {
    id: opts.id,
    url: opts.url,
    as_token: encodeBase64Url(randomBytes(32)),
    hs_token: encodeBase64Url(randomBytes(32)),
    sender_localpart: opts.senderLocalpart,
    rate_limited: opts.rateLimited ?? false,
    namespaces: { users, aliases, rooms: [...(opts.namespaces?.rooms ?? [])] },
    [REG_MSC4190]: true,
    ...(e2ee
      ? { [REG_RECEIVE_EPHEMERAL]: true, [REG_PUSH_EPHEMERAL_UNSTABLE]: true, [REG_MSC3202]: true }
      : {}),
  };
  // Through the parser: a bad regex or localpart fails here, not at the homeserver.
  return parseRegistration(JSON.stringify(raw));
}

/** The registration as YAML, the format homeservers read. Holds both tokens: keep it private (mode 0600). */
export function registrationToYaml(reg: Registration): string {
  return stringify(reg);
}
