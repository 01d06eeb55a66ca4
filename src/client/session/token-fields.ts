// The refresh token and access-token lifetime of a login's, registration's or renewal's answer,
// checked. The wire takes them as they come (`wire/auth.ts`): by the time they arrive the server
// has made the device, or spent the old refresh token, so an answer failed for them would leave a
// device nobody holds (an orphan on the account) or a session with a spent refresh token. A field
// of the wrong shape is left out instead, with a warning (a `MalformedResponseError`, never the
// value): without a lifetime, the token is renewed once the server says it expired (401
// `soft_logout`); without a refresh token, the session is one that cannot renew.
import { MalformedResponseError } from "../errors.ts";

/** The fields as the session takes them. */
export interface TokenFields {
  refresh_token?: string;
  expires_in_ms?: number;
}

/** Told of an answer's field left out (`MatrixClient`: logged, and emitted as `error`). */
export type AnswerWarning = (warning: MalformedResponseError) => void;

/**
 * `res`'s `refresh_token` and `expires_in_ms` where they are of use: a non-empty string of
 * well-formed Unicode (another would not survive every store as sent), and a positive integer
 * of milliseconds. `null` counts as absent. `endpoint` names the answer in the warning.
 */
export function checkedTokenFields(
  res: { readonly refresh_token?: unknown; readonly expires_in_ms?: unknown },
  endpoint: string,
  warn: AnswerWarning | undefined,
): TokenFields {
  const issues: string[] = [];
  const out: TokenFields = {};
  const token = res.refresh_token;
  if (typeof token === "string" && token.isWellFormed()) {
    if (token.length > 0) out.refresh_token = token;
  } else if (token !== undefined && token !== null) {
    issues.push("refresh_token: not a string of well-formed Unicode; left out (no renewal with it)");
  }
  const ms = res.expires_in_ms;
  if (typeof ms === "number" && Number.isSafeInteger(ms) && ms > 0) out.expires_in_ms = ms;
  else if (ms !== undefined && ms !== null && out.refresh_token !== undefined) {
    issues.push(
      "expires_in_ms: not a positive integer of milliseconds; left out (the token is renewed when the server says it expired)",
    );
  }
  if (issues.length > 0) warn?.(new MalformedResponseError(endpoint, 200, issues));
  return out;
}
