// Login flows (`GET /login`) and the SSO redirect (spec "Login" and "SSO client login"): the app
// sends the user's browser to `ssoRedirectUrl`, the homeserver sends it back to the app's
// `redirectUrl` with a `loginToken` query parameter, and the app logs in with that token
// (`loginWithToken`).

import { type LoginFlowsResponse, loginFlowsResponseSchema } from "../../wire/index.ts";
import type { ApiCall } from "../call.ts";
import { ClientError } from "../errors.ts";
import { path } from "../http.ts";

/** An identity provider an `m.login.sso` flow offers (spec `identity_providers`). */
export interface IdentityProvider {
  /** Opaque ID to pass to `ssoRedirectUrl`. */
  readonly id: string;
  /** Human-readable name to show (untrusted text from the server). */
  readonly name: string;
  /** An `mxc://` URI of an icon, as the server gave it. */
  readonly icon?: string;
  /** A UI hint naming a common provider (`github`, `google`, ...). */
  readonly brand?: string;
}

/** One login flow the homeserver offers. */
export interface LoginFlow {
  /** The login type (`m.login.password`, `m.login.sso`, `m.login.token`, ...). */
  readonly type: string;
  /** For `m.login.sso`: the identity providers to offer (empty: let the server choose). */
  readonly identityProviders: readonly IdentityProvider[];
  /** For `m.login.token`: whether the server supports `POST /login/get_token`. */
  readonly getLoginToken: boolean;
}

/** `GET /_matrix/client/v3/login`, validated and bounded (see `MAX_LOGIN_FLOWS`). */
export async function fetchLoginFlows(call: ApiCall): Promise<LoginFlow[]> {
  const res: LoginFlowsResponse = await call(
    { method: "GET", path: path`/_matrix/client/v3/login`, auth: false, schema: loginFlowsResponseSchema },
    true,
  );
  return res.flows.map((f) => ({
    type: f.type,
    identityProviders:
      f.type === "m.login.sso"
        ? (f.identity_providers ?? []).map((p) => ({
            id: p.id,
            name: p.name,
            ...(p.icon !== undefined ? { icon: p.icon } : {}),
            ...(p.brand !== undefined ? { brand: p.brand } : {}),
          }))
        : [],
    getLoginToken: f.type === "m.login.token" && f.get_login_token === true,
  }));
}

/**
 * The homeserver URL to send the user's browser to for SSO login (`/login/sso/redirect`, or
 * `/login/sso/redirect/{idpId}` for one identity provider), coming back to `redirectUrl`.
 */
export function ssoRedirectUrl(baseUrl: string, redirectUrl: string, idpId?: string): string {
  if (!redirectUrl.isWellFormed() || !URL.canParse(redirectUrl)) {
    throw new ClientError("INVALID_ARGUMENT", "the SSO redirect URL must be an absolute URL");
  }
  if (idpId !== undefined && idpId.length === 0) {
    throw new ClientError("INVALID_ARGUMENT", "the identity provider ID is empty");
  }
  const endpoint =
    idpId === undefined
      ? path`/_matrix/client/v3/login/sso/redirect`
      : path`/_matrix/client/v3/login/sso/redirect/${idpId}`;
  return `${baseUrl}${endpoint.encoded}?redirectUrl=${encodeURIComponent(redirectUrl)}`;
}
