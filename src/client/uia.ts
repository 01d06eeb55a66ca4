// User-Interactive Authentication (spec "User-Interactive Authentication API") for the endpoints
// that ask for it (deleting devices, uploading cross-signing keys): retry the request with an
// `auth` object built from the account password or a caller-supplied callback.
import { type UiaResponse, uiaResponseSchema } from "../wire/index.ts";
import { ClientError, MatrixError } from "./errors.ts";

/**
 * How to answer the server's authentication challenge: the account password
 * (`m.login.password`), or a callback that builds the `auth` object for the offered flows (another
 * stage, e.g. SSO, run by the application). The callback may be called again for each further stage.
 */
export type UiaAuth =
  | { readonly password: string }
  | ((challenge: UiaResponse) => Promise<Record<string, unknown>>);

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
  for (let round = 0; round <= MAX_UIA_ROUNDS; round++) {
    try {
      return await request(authDict);
    } catch (e) {
      const challenge = uiaChallenge(e);
      if (challenge === undefined) throw e;
      // A failed attempt at a stage comes back as a challenge with an errcode: report it.
      if (authDict !== undefined && e instanceof MatrixError && e.errcode !== "M_UNKNOWN") throw e;
      if (auth === undefined) {
        throw new ClientError("AUTH_REQUIRED", `the server asks for authentication to ${what}`, { cause: e });
      }
      authDict = await answer(challenge, auth, userId, what);
    }
  }
  throw new ClientError("UNSUPPORTED_AUTH", "the server kept asking for more authentication");
}

function uiaChallenge(e: unknown): UiaResponse | undefined {
  if (!(e instanceof MatrixError) || e.httpStatus !== 401) return undefined;
  const parsed = uiaResponseSchema.safeParse(e.body);
  return parsed.success ? parsed.data : undefined;
}

async function answer(
  challenge: UiaResponse,
  auth: UiaAuth,
  userId: string,
  what: string,
): Promise<Record<string, unknown>> {
  const session = challenge.session !== undefined ? { session: challenge.session } : {};
  if (typeof auth === "function") return { ...(await auth(challenge)), ...session };
  const done = new Set(challenge.completed ?? []);
  const passwordNext = challenge.flows.some((f) => f.stages.find((s) => !done.has(s)) === "m.login.password");
  if (!passwordNext) {
    throw new ClientError("UNSUPPORTED_AUTH", `the server offers no password stage to ${what}`);
  }
  return {
    type: "m.login.password",
    identifier: { type: "m.id.user", user: userId },
    password: auth.password,
    ...session,
  };
}
