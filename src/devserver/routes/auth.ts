// Discovery, login, registration and logout.

import { LOGIN_TYPE_APPSERVICE } from "../../wire/appservice.ts";
import * as z from "../../wire/zod.ts";
import { forbidden, MatrixError } from "../errors.ts";
import { randomId, type Session } from "../homeserver.ts";
import { hashPassword } from "../password.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody } from "../router.ts";
import type { Authed } from "../types.ts";
import { uiaAuthField } from "../uia.ts";

/** Spec versions whose endpoints (within the devserver's scope) are implemented. */
export const SPEC_VERSIONS = [
  "r0.6.1",
  "v1.1",
  "v1.2",
  "v1.3",
  "v1.4",
  "v1.5",
  "v1.6",
  "v1.7",
  "v1.8",
  "v1.9",
  "v1.10",
  "v1.11",
];

/** Longest localpart accepted (the spec caps whole user IDs at 255 bytes). */
export const MAX_LOCALPART_LENGTH = 128;
export const MAX_PASSWORD_LENGTH = 512;
const LOCALPART_RE = /^[a-z0-9._=\-/+]+$/;

const loginSchema = z.object({
  type: z.string(),
  identifier: z.optional(z.looseObject({ type: z.string(), user: z.optional(z.string()) })),
  user: z.optional(z.string()),
  password: z.optional(z.string().check(z.maxLength(MAX_PASSWORD_LENGTH))),
  device_id: z.optional(z.string().check(z.minLength(1), z.maxLength(255))),
  initial_device_display_name: z.optional(z.string().check(z.maxLength(255))),
  refresh_token: z.optional(z.boolean()),
});

const registerSchema = z.object({
  type: z.optional(z.string()),
  username: z.optional(z.string()),
  password: z.optional(z.string().check(z.maxLength(MAX_PASSWORD_LENGTH))),
  device_id: z.optional(z.string().check(z.minLength(1), z.maxLength(255))),
  initial_device_display_name: z.optional(z.string().check(z.maxLength(255))),
  inhibit_login: z.optional(z.boolean()),
  refresh_token: z.optional(z.boolean()),
  auth: uiaAuthField,
});

export function registerAuthRoutes({ hs, router, uia, baseUrl }: RouteContext): void {
  router.add(
    "GET",
    "/_matrix/client/versions",
    () => ({ json: { versions: SPEC_VERSIONS, unstable_features: {} } }),
    "none",
  );
  router.add(
    "GET",
    "/.well-known/matrix/client",
    () => ({ json: { "m.homeserver": { base_url: baseUrl() } } }),
    "none",
  );

  const localUserId = (claimed: string): string =>
    claimed.startsWith("@") ? claimed : `@${claimed.toLowerCase()}:${hs.serverName}`;

  router.client(
    "GET",
    "/login",
    () => ({ json: { flows: [{ type: "m.login.password" }, { type: LOGIN_TYPE_APPSERVICE }] } }),
    "none",
  );
  router.client(
    "POST",
    "/login",
    (req) => {
      const body = jsonBody(req, loginSchema);
      if (body.type !== "m.login.password" && body.type !== LOGIN_TYPE_APPSERVICE) {
        throw new MatrixError(400, "M_UNKNOWN", `Unknown login type ${body.type}`);
      }
      if (body.identifier && body.identifier.type !== "m.id.user") {
        throw new MatrixError(400, "M_UNKNOWN", `Unknown identifier type ${body.identifier.type}`);
      }
      const claimed = body.identifier?.user ?? body.user;
      if (claimed === undefined) throw new MatrixError(400, "M_MISSING_PARAM", "user is required");
      const userId = localUserId(claimed);
      if (body.type === LOGIN_TYPE_APPSERVICE) {
        // The appservice's token vouches for users of its namespace (spec: identity assertion).
        const as = req.auth?.appserviceId !== undefined ? hs.appservices.byToken(req.auth.token) : undefined;
        if (!as) throw new MatrixError(401, "M_MISSING_TOKEN", "An appservice token is required");
        if (!hs.appservices.controls(as, userId))
          throw forbidden("The user is not in the appservice's namespace");
        if (!hs.accounts.getUser(userId)) throw forbidden("Invalid username or password");
      } else {
        if (body.password === undefined)
          throw new MatrixError(400, "M_MISSING_PARAM", "password is required");
        const user = hs.accounts.getUser(userId);
        // Same answer for an unknown user and a wrong password: no account enumeration.
        if (!user || !hs.passwords.check(userId, body.password, user.password_hash)) {
          throw forbidden("Invalid username or password");
        }
      }
      const s = hs.createSession(
        userId,
        body.device_id,
        body.initial_device_display_name ?? null,
        req.ip,
        body.refresh_token === true,
      );
      return {
        json: {
          ...sessionJson(s),
          home_server: hs.serverName,
          well_known: { "m.homeserver": { base_url: baseUrl() } },
        },
      };
    },
    "none",
  );

  router.client(
    "GET",
    "/register/available",
    (req) => {
      const username = req.query.get("username") ?? "";
      checkLocalpart(username);
      if (hs.accounts.getUser(`@${username}:${hs.serverName}`)) {
        throw new MatrixError(400, "M_USER_IN_USE", "User ID already taken.");
      }
      return { json: { available: true } };
    },
    "none",
  );

  router.client(
    "POST",
    "/register",
    (req) => {
      const kind = req.query.get("kind") ?? "user";
      if (kind !== "user") throw forbidden("Guest access is disabled");
      const body = jsonBody(req, registerSchema);
      if (body.type === LOGIN_TYPE_APPSERVICE) return registerAppserviceUser(req.auth, body);
      // A requested name is checked before UIA (so the client hears early that it is taken); a
      // generated one is picked only once UIA is done, so every round of the flow agrees.
      if (body.username !== undefined) {
        checkLocalpart(body.username.toLowerCase());
        if (hs.accounts.getUser(`@${body.username.toLowerCase()}:${hs.serverName}`)) {
          throw new MatrixError(400, "M_USER_IN_USE", "User ID already taken.");
        }
        if (hs.appservices.exclusiveOwner(`@${body.username.toLowerCase()}:${hs.serverName}`)) {
          throw new MatrixError(400, "M_EXCLUSIVE", "This user ID is reserved by an application service.");
        }
      }
      uia.require(body.auth, "register", [["m.login.dummy"]], undefined);
      const localpart =
        body.username?.toLowerCase() ??
        `user_${randomId(6)
          .toLowerCase()
          .replace(/[^a-z0-9]/g, "x")}`;
      const userId = `@${localpart}:${hs.serverName}`;
      const created = hs.accounts.createUser(
        userId,
        body.password !== undefined ? hashPassword(body.password) : null,
        localpart,
      );
      if (!created) throw new MatrixError(400, "M_USER_IN_USE", "User ID already taken.");
      if (body.inhibit_login) return { json: { user_id: userId, home_server: hs.serverName } };
      const s = hs.createSession(
        userId,
        body.device_id,
        body.initial_device_display_name ?? null,
        req.ip,
        body.refresh_token === true,
      );
      return { json: { ...sessionJson(s), home_server: hs.serverName } };
    },
    "none",
  );

  /** `m.login.application_service` registration: no UIA, no password, the user in the namespace. */
  function registerAppserviceUser(
    auth: Authed | undefined,
    body: z.infer<typeof registerSchema>,
  ): { json: Record<string, unknown> } {
    const as = auth?.appserviceId !== undefined ? hs.appservices.byToken(auth.token) : undefined;
    if (!as) throw new MatrixError(401, "M_MISSING_TOKEN", "An appservice token is required");
    if (body.username === undefined) throw new MatrixError(400, "M_MISSING_PARAM", "username is required");
    const localpart = body.username.toLowerCase();
    checkLocalpart(localpart);
    const userId = `@${localpart}:${hs.serverName}`;
    if (!hs.appservices.controls(as, userId)) {
      throw new MatrixError(400, "M_EXCLUSIVE", "The user is not in the appservice's namespace");
    }
    // Nor in another appservice's exclusive one (as Synapse refuses it).
    const owner = hs.appservices.exclusiveOwner(userId);
    if (owner !== undefined && owner !== as) {
      throw new MatrixError(400, "M_EXCLUSIVE", "This user ID is reserved by another application service.");
    }
    if (!hs.accounts.createUser(userId, null, localpart)) {
      throw new MatrixError(400, "M_USER_IN_USE", "User ID already taken.");
    }
    if (body.inhibit_login) return { json: { user_id: userId, home_server: hs.serverName } };
    const s = hs.createSession(userId, body.device_id, body.initial_device_display_name ?? null, "", false);
    return { json: { ...sessionJson(s), home_server: hs.serverName } };
  }

  router.client(
    "POST",
    "/refresh",
    (req) => {
      const body = jsonBody(req, z.object({ refresh_token: z.string() }));
      const { user_id: _u, device_id: _d, ...tokens } = sessionJson(hs.refresh(body.refresh_token));
      return { json: tokens };
    },
    "none",
  );

  router.client("POST", "/logout", (req) => {
    const a = authed(req);
    hs.deleteDevice(a.userId, a.deviceId);
    return { json: {} };
  });
  router.client("POST", "/logout/all", (req) => {
    const a = authed(req);
    for (const d of hs.accounts.listDevices(a.userId)) hs.deleteDevice(a.userId, d.device_id);
    return { json: {} };
  });
}

function sessionJson(s: Session): Record<string, unknown> {
  const json: Record<string, unknown> = { user_id: s.userId, access_token: s.token, device_id: s.deviceId };
  if (s.refreshToken !== undefined) {
    json.refresh_token = s.refreshToken;
    json.expires_in_ms = s.expiresInMs;
  }
  return json;
}

function checkLocalpart(localpart: string): void {
  if (localpart.length === 0 || localpart.length > MAX_LOCALPART_LENGTH || !LOCALPART_RE.test(localpart)) {
    throw new MatrixError(
      400,
      "M_INVALID_USERNAME",
      "User ID can only contain characters a-z, 0-9, or '=_-./+'",
    );
  }
}
