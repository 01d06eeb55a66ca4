// Discovery, versions, login, registration, whoami and logout.
import { z } from "zod";

/** `GET /.well-known/matrix/client`. */
export const wellKnownClientSchema = z.looseObject({
  "m.homeserver": z.looseObject({ base_url: z.string().min(1) }),
  "m.identity_server": z.looseObject({ base_url: z.string() }).optional(),
});
export type WellKnownClient = z.infer<typeof wellKnownClientSchema>;

/** `GET /_matrix/client/versions`. */
export const versionsResponseSchema = z.looseObject({
  versions: z.array(z.string()),
  unstable_features: z.record(z.string(), z.boolean()).optional(),
});
export type VersionsResponse = z.infer<typeof versionsResponseSchema>;

/** `GET /_matrix/client/v3/login`. */
export const loginFlowsResponseSchema = z.object({
  flows: z.array(z.looseObject({ type: z.string() })),
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

export const loginResponseSchema = z.looseObject({
  user_id: z.string().min(1),
  access_token: z.string().min(1),
  device_id: z.string().min(1),
  home_server: z.string().optional(),
  expires_in_ms: z.number().int().positive().optional(),
  refresh_token: z.string().optional(),
  well_known: z.looseObject({ "m.homeserver": z.looseObject({ base_url: z.string() }) }).optional(),
});
export type LoginResponse = z.infer<typeof loginResponseSchema>;

/** `POST /_matrix/client/v3/register`. */
export interface RegisterRequest {
  username?: string;
  password?: string;
  device_id?: string;
  initial_device_display_name?: string;
  inhibit_login?: boolean;
  auth?: { type: string; session?: string } & Record<string, unknown>;
}

export const registerResponseSchema = z.looseObject({
  user_id: z.string().min(1),
  access_token: z.string().min(1).optional(),
  device_id: z.string().min(1).optional(),
});
export type RegisterResponse = z.infer<typeof registerResponseSchema>;

/** The 401 body of a user-interactive-auth challenge. */
export const uiaResponseSchema = z.looseObject({
  flows: z.array(z.object({ stages: z.array(z.string()) })),
  session: z.string().optional(),
  completed: z.array(z.string()).optional(),
  params: z.record(z.string(), z.unknown()).optional(),
});
export type UiaResponse = z.infer<typeof uiaResponseSchema>;

/** `GET /_matrix/client/v3/account/whoami`. */
export const whoamiResponseSchema = z.looseObject({
  user_id: z.string().min(1),
  device_id: z.string().optional(),
  is_guest: z.boolean().optional(),
});
export type WhoamiResponse = z.infer<typeof whoamiResponseSchema>;

/** Endpoints that answer `{}` (logout, typing, receipts, invites, ...). */
export const emptyResponseSchema = z.looseObject({});
export type EmptyResponse = z.infer<typeof emptyResponseSchema>;
