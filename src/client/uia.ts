// User-Interactive Authentication (spec "User-Interactive Authentication API") for the endpoints
// that ask for it (deleting devices, uploading cross-signing keys): retry the request with an
// `auth` object built from the account password, an approval in the browser (`m.oauth`), or a
// caller-supplied callback.
import { type UiaResponse, uiaResponseSchema } from "../wire/index.ts";
import { ClientError, MalformedResponseError, MatrixError } from "./errors.ts";

/** The stage types of an approval in the homeserver's account web UI: spec v1.17, then MSC4312's unstable name. */
export const UIA_OAUTH_STAGES = ["m.oauth", "org.matrix.cross_signing_reset"] as const;

/** Longest approval URL taken from an `m.oauth` challenge. */
export const MAX_UIA_OAUTH_URL_LENGTH = 8192;

/**
 * An `m.oauth` stage (servers delegating login to OAuth 2.0, e.g. Synapse with MAS, when
 * replacing cross-signing keys): the user approves the action at `url` in a browser, then the
 * request is sent again with only the UIA session.
 */
export interface UiaOAuthStage {
  /** `m.oauth`, or the unstable `org.matrix.cross_signing_reset` of servers before spec v1.17. */
  readonly type: (typeof UIA_OAUTH_STAGES)[number];
  /** The page to open: an absolute `https:` URL (`http:` only on a loopback host), without user info. */
  readonly url: string;
}

/** Shows `stage.url` to the user and resolves once they approved (reject to give up). */
export type UiaOAuthApproval = (stage: UiaOAuthStage) => Promise<void>;

/**
 * How to answer the server's authentication challenge: the account password
 * (`m.login.password`), an approval in the browser (`oauth`, for an `m.oauth` stage; with both,
 * the password is used when a flow offers it), or a callback that builds the `auth` object for the
 * offered flows (another stage, e.g. SSO, run by the application; given the `m.oauth` stage, when
 * one is next, as its second argument: resolve with `{}` once it is approved). The callback or the
 * approval may be called again for each further stage.
 */
export type UiaAuth =
  | { readonly password: string; readonly oauth?: UiaOAuthApproval }
  | { readonly password?: undefined; readonly oauth: UiaOAuthApproval }
  | ((challenge: UiaResponse, oauth?: UiaOAuthStage) => Promise<Record<string, unknown>>);

/** Stages a request goes through at most (each answered once): a bound on a looping server. */
export const MAX_UIA_ROUNDS = 5;

/**
 * Sends `request` without auth, then answers each challenge with `auth` (`undefined`: fail on
 * the first challenge with `AUTH_REQUIRED`). `what` names the operation in errors.
 */
export async function withUia<T>(
  userId: string,
  auth: UiaAuth | undefined,
  what: string,
  request: (authDict: Record<string, unknown> | undefined) => Promise<T>,
): Promise<T> {
  let authDict: Record<string, unknown> | undefined;
  let approved = false;
  for (let round = 0; round <= MAX_UIA_ROUNDS; round++) {
    try {
      return await request(authDict);
    } catch (e) {
      const challenge = uiaChallenge(e);
      if (challenge === undefined) throw e;
      // A failed attempt at a stage comes back as a challenge with an errcode: report it. After an
      // approval, the same challenge again (whatever its errcode) means not approved (yet): ask again.
      const askAgain = approved && oauthStageOf(challenge, what) !== undefined;
      if (authDict !== undefined && !askAgain && e instanceof MatrixError && e.errcode !== "M_UNKNOWN")
        throw e;
      if (auth === undefined) {
        throw new ClientError("AUTH_REQUIRED", `the server asks for authentication to ${what}`, { cause: e });
      }
      ({ authDict, approved } = await answer(challenge, auth, userId, what));
    }
  }
  throw new ClientError("UNSUPPORTED_AUTH", "the server kept asking for more authentication");
}

function uiaChallenge(e: unknown): UiaResponse | undefined {
  if (!(e instanceof MatrixError) || e.httpStatus !== 401) return undefined;
  const parsed = uiaResponseSchema.safeParse(e.body);
  return parsed.success ? parsed.data : undefined;
}

/** The stage each flow asks for next. */
function nextStages(challenge: UiaResponse): Set<string> {
  const done = new Set(challenge.completed ?? []);
  const next = new Set<string>();
  for (const f of challenge.flows) {
    const stage = f.stages.find((s) => !done.has(s));
    if (stage !== undefined) next.add(stage);
  }
  return next;
}

/**
 * The `m.oauth` stage (else the unstable one) when a flow asks for it next: `undefined` when none
 * does, `MalformedResponseError` when each offered has no usable `url` in its params.
 */
function oauthStageOf(
  challenge: UiaResponse,
  what: string,
): UiaOAuthStage | MalformedResponseError | undefined {
  const next = nextStages(challenge);
  const offered = UIA_OAUTH_STAGES.filter((t) => next.has(t));
  if (offered.length === 0) return undefined;
  let problem = "";
  for (const type of offered) {
    const url = approvalUrl(challenge.params?.[type]);
    if (url.href !== undefined) return { type, url: url.href };
    problem ||= `params.${type}.url: ${url.problem}`;
  }
  return new MalformedResponseError(`user-interactive auth to ${what}`, 401, [problem]);
}

/**
 * `params[stage].url` as an absolute URL without user info, bounded and well-formed: `https:`, or
 * `http:` on a loopback host only (a development server on this machine). Anywhere else, a plain
 * `http:` page could be rewritten on the way, and the user would approve replacing their keys on a
 * page an attacker controls. Returns the URL, or why it is not taken.
 */
function approvalUrl(
  params: unknown,
): { href: string; problem?: undefined } | { href?: undefined; problem: string } {
  const bad = (problem: string) => ({ problem });
  if (typeof params !== "object" || params === null) return bad("missing");
  const url: unknown = (params as Record<string, unknown>).url;
  if (
    typeof url !== "string" ||
    url.length > MAX_UIA_OAUTH_URL_LENGTH ||
    !url.isWellFormed() ||
    !URL.canParse(url)
  )
    return bad("not an absolute URL");
  const u = new URL(url);
  if (u.protocol !== "https:" && u.protocol !== "http:") return bad("not an http(s) URL");
  if (u.protocol === "http:" && !isLoopbackHost(u.hostname))
    return bad("http: is only taken for a loopback host");
  // User info in the URL would show the user a page other than the one it seems to name.
  if (u.username !== "" || u.password !== "") return bad("user info in the URL");
  return { href: u.href };
}

/** `localhost`, 127.0.0.0/8 or `[::1]`, as `URL` gives a hostname (IPv4 normalised, IPv6 bracketed). */
function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  );
}

async function answer(
  challenge: UiaResponse,
  auth: UiaAuth,
  userId: string,
  what: string,
): Promise<{ authDict: Record<string, unknown>; approved: boolean }> {
  const session = challenge.session !== undefined ? { session: challenge.session } : {};
  const oauth = oauthStageOf(challenge, what);
  if (typeof auth === "function") {
    const stage = oauth instanceof MalformedResponseError ? undefined : oauth;
    return { authDict: { ...(await auth(challenge, stage)), ...session }, approved: false };
  }
  if (auth.password !== undefined && nextStages(challenge).has("m.login.password")) {
    return {
      authDict: {
        type: "m.login.password",
        identifier: { type: "m.id.user", user: userId },
        password: auth.password,
        ...session,
      },
      approved: false,
    };
  }
  if (auth.oauth !== undefined && oauth !== undefined) {
    if (oauth instanceof MalformedResponseError) throw oauth;
    await auth.oauth(oauth);
    // Spec: once approved, the stage is completed with an auth dict holding only the session.
    return { authDict: { ...session }, approved: true };
  }
  if (oauth !== undefined) {
    throw new ClientError(
      "UNSUPPORTED_AUTH",
      `the server asks for an approval in the browser (m.oauth) to ${what}: pass auth.oauth`,
    );
  }
  const offered = auth.password !== undefined ? "password" : "m.oauth";
  // The stage names are the server's: cut and printable only, for the message.
  const asked = [...nextStages(challenge)].slice(0, 4).map((st) => JSON.stringify(st.slice(0, 64)));
  throw new ClientError(
    "UNSUPPORTED_AUTH",
    `the server offers no ${offered} stage to ${what} (it asks for ${asked.join(", ") || "nothing"})`,
  );
}
