// Discovery, versions, login, registration, whoami and logout.
import { firstValidItems, lenientOptional } from "./json.ts";
import * as z from "./zod.ts";

/** `GET /.well-known/matrix/client`. */
export const wellKnownClientSchema = z.looseObject({
  "m.homeserver": z.looseObject({ base_url: z.string().check(z.minLength(1)) }),
  "m.identity_server": z.optional(z.looseObject({ base_url: z.string() })),
});
export type WellKnownClient = z.infer<typeof wellKnownClientSchema>;

/** `GET /_matrix/client/versions`. */
export const versionsResponseSchema = z.looseObject({
  versions: z.array(z.string()),
  unstable_features: z.optional(z.record(z.string(), z.boolean())),
});
export type VersionsResponse = z.infer<typeof versionsResponseSchema>;

/** Most login flows taken from a `GET /login` answer (servers offer a handful); later ones are left out. */
export const MAX_LOGIN_FLOWS = 32;
/** Most identity providers taken from an `m.login.sso` flow; later ones are left out. */
export const MAX_IDENTITY_PROVIDERS = 64;
/**
 * Longest login type, identity provider ID, name, icon or brand taken from `GET /login`: a flow or
 * provider with a longer one is left out.
 */
export const MAX_LOGIN_FLOW_STRING_LENGTH = 255;

/** A non-empty, bounded, well-formed string from a `GET /login` answer (shown to users, put in URLs). */
const loginFlowString = z.string().check(
  z.minLength(1),
  z.maxLength(MAX_LOGIN_FLOW_STRING_LENGTH),
  z.refine((s) => s.isWellFormed(), "not well-formed Unicode"),
);

/** One identity provider of an `m.login.sso` flow (spec: `id` and `name` required). */
export const identityProviderSchema = z.looseObject({
  id: loginFlowString,
  name: loginFlowString,
  icon: z.optional(loginFlowString),
  brand: z.optional(loginFlowString),
});

/**
 * `GET /_matrix/client/v3/login`. `flows` must be a list; in it, a flow that is not well-formed
 * (its type missing, empty, past the bound or not well-formed Unicode; its `identity_providers`
 * not a list) is left out, as is an identity provider that is not, and only the first
 * `MAX_LOGIN_FLOWS` flows and `MAX_IDENTITY_PROVIDERS` providers of each are taken: one odd entry
 * does not cost the user the login flows that are fine. A `get_login_token` other than `true`
 * reads as false.
 */
export const loginFlowsResponseSchema = z.looseObject({
  flows: firstValidItems(
    z.looseObject({
      type: loginFlowString,
      get_login_token: lenientOptional(z.boolean()),
      identity_providers: z.optional(firstValidItems(identityProviderSchema, MAX_IDENTITY_PROVIDERS)),
    }),
    MAX_LOGIN_FLOWS,
  ),
});
export type LoginFlowsResponse = z.infer<typeof loginFlowsResponseSchema>;

export interface UserIdentifier {
  type: "m.id.user";
  user: string;
}

interface LoginRequestCommon {
  device_id?: string;
  initial_device_display_name?: string;
  refresh_token?: boolean;
}

/** `POST /_matrix/client/v3/login` bodies the client sends. */
export type LoginRequest =
  | (LoginRequestCommon & { type: "m.login.password"; identifier: UserIdentifier; password: string })
  | (LoginRequestCommon & { type: "m.login.token"; token: string });

/**
 * Longest user or device ID a login or registration may make the session's: the spec caps user IDs
 * at 255 bytes, and the E2EE engine takes device IDs up to the same bound.
 */
export const MAX_SESSION_ID_LENGTH = 255;

/**
 * The session's user or device ID: it goes into request paths (`encodeURIComponent` throws on a
 * lone surrogate) and the crypto store's identity, so it must be well-formed and bounded.
 */
const sessionIdSchema = z.string().check(
  z.minLength(1),
  z.maxLength(MAX_SESSION_ID_LENGTH),
  z.refine((s) => s.isWellFormed(), "not well-formed Unicode"),
);

/**
 * An access token goes into the `Authorization` header of every request: only visible ASCII is
 * taken (`fetch` and `node:http` refuse control characters and code points past U+00FF, so a
 * saved session with such a token would fail every request, for ever, as a network error).
 */
const ACCESS_TOKEN = /^[\x21-\x7e]+$/;
const accessTokenSchema = z.string().check(z.regex(ACCESS_TOKEN, "not visible ASCII"));

/** Whether `token` is one an `Authorization` header can carry (see `accessTokenSchema`). */
export function isAccessToken(token: unknown): token is string {
  return typeof token === "string" && ACCESS_TOKEN.test(token);
}

/**
 * The refresh token and the access token's lifetime in a login's, registration's or renewal's
 * answer, taken as they come: the client checks them (`checkedTokenFields`) and leaves out one it
 * cannot use, warning, rather than fail the answer. By then the server made the device (or spent
 * the old refresh token): refused, it would leave a device nobody holds, or a spent refresh token.
 */
const tokenFields = {
  expires_in_ms: z.optional(z.unknown()),
  refresh_token: z.optional(z.unknown()),
};

export const loginResponseSchema = z.looseObject({
  user_id: sessionIdSchema,
  access_token: accessTokenSchema,
  device_id: sessionIdSchema,
  // Not used, and not checked: by the time they arrive the server made the device, which an
  // answer refused for them would leave behind (deprecated `home_server`, `well_known`).
  home_server: z.optional(z.unknown()),
  well_known: z.optional(z.unknown()),
  ...tokenFields,
});
export type LoginResponse = z.infer<typeof loginResponseSchema>;

/** `POST /_matrix/client/v3/register`. */
export interface RegisterRequest {
  username?: string;
  password?: string;
  device_id?: string;
  initial_device_display_name?: string;
  inhibit_login?: boolean;
  refresh_token?: boolean;
  auth?: { type: string; session?: string } & Record<string, unknown>;
}

export const registerResponseSchema = z.looseObject({
  user_id: sessionIdSchema,
  access_token: z.optional(accessTokenSchema),
  device_id: z.optional(sessionIdSchema),
  ...tokenFields,
});
export type RegisterResponse = z.infer<typeof registerResponseSchema>;

/** `POST /_matrix/client/v3/refresh`: no `refresh_token` means the old one is kept. */
export const refreshResponseSchema = z.looseObject({
  access_token: accessTokenSchema,
  ...tokenFields,
});
export type RefreshResponse = z.infer<typeof refreshResponseSchema>;

/** The 401 body of a user-interactive-auth challenge. */
export const uiaResponseSchema = z.looseObject({
  flows: z.array(z.object({ stages: z.array(z.string()) })),
  session: z.optional(z.string()),
  completed: z.optional(z.array(z.string())),
  params: z.optional(z.record(z.string(), z.unknown())),
});
export type UiaResponse = z.infer<typeof uiaResponseSchema>;

/** `GET /_matrix/client/v3/account/whoami`. */
export const whoamiResponseSchema = z.looseObject({
  user_id: z.string().check(z.minLength(1)),
  device_id: z.optional(z.string()),
  is_guest: z.optional(z.boolean()),
});
export type WhoamiResponse = z.infer<typeof whoamiResponseSchema>;

/** Endpoints that answer `{}` (logout, typing, receipts, invites, ...). */
export const emptyResponseSchema = z.looseObject({});
export type EmptyResponse = z.infer<typeof emptyResponseSchema>;
