// The session: who is logged in (user, device, access token) and the calls that change it on the
// server (login, registration, logout). Starting and stopping the other parts for a session is
// the client lifecycle's (client-lifecycle.ts).

import {
  emptyResponseSchema,
  isAccessToken,
  type LoginRequest,
  loginResponseSchema,
  type RegisterRequest,
  registerResponseSchema,
  uiaResponseSchema,
} from "../../wire/index.ts";
import type * as z from "../../wire/zod.ts";
import type { ApiCall } from "../call.ts";
import type { ClientStore, StoredSession } from "../client-store/index.ts";
import { type Clock, systemClock } from "../clock.ts";
import { ClientError, MalformedResponseError, MatrixError } from "../errors.ts";
import { normalizeBaseUrl, path, schemaIssues } from "../http.ts";
import { fetchLoginFlows, type LoginFlow } from "./sso.ts";
import { type AnswerWarning, checkedTokenFields, type TokenFields } from "./token-fields.ts";

export interface PasswordLogin {
  /** Full user ID (`@alice:example.org`) or localpart (`alice`). */
  user: string;
  password: string;
  /** Reuse a device; by default the stored session's device when it is the same user. */
  deviceId?: string;
  deviceDisplayName?: string;
}

export interface RegisterOptions {
  username: string;
  password: string;
  deviceId?: string;
  deviceDisplayName?: string;
}

/** Session info without the token. */
export interface SessionInfo {
  userId: string;
  deviceId: string;
  homeserverUrl: string;
}

export interface SessionHost {
  readonly call: ApiCall;
  readonly store: ClientStore;
  readonly homeserverUrl: string;
  /** Ask for a refresh token at login and registration (`MatrixClientOptions.refreshTokens`); default false. */
  readonly refreshTokens?: boolean;
  /** What a token's lifetime is counted from (`accessTokenExpiresAt`); default the system clock. */
  readonly clock?: Clock;
  /** Told of each access token the session takes (to plan its renewal: `TokenRefresher`). */
  readonly tokensTaken?: (s: StoredSession) => void;
  /** Told of a login's or registration's token field left out (`checkedTokenFields`). */
  readonly warn?: AnswerWarning;
}

/** A login's or registration's answer, its refresh token and lifetime checked (`checkedTokenFields`). */
export interface LoginAnswer extends TokenFields {
  user_id: string;
  access_token: string;
  device_id: string;
}

export class Session {
  readonly #host: SessionHost;
  #current: StoredSession | undefined;

  constructor(host: SessionHost) {
    this.#host = host;
  }

  get current(): StoredSession | undefined {
    return this.#current;
  }

  /** The session without its access token. */
  get info(): SessionInfo | undefined {
    const s = this.#current;
    return s ? { userId: s.userId, deviceId: s.deviceId, homeserverUrl: s.homeserverUrl } : undefined;
  }

  require(): StoredSession {
    if (!this.#current) throw new ClientError("NOT_LOGGED_IN", "log in or restore a session first");
    return this.#current;
  }

  /** Forgets the session in memory (the token is gone); the store is the client's to clear. */
  drop(): void {
    this.#current = undefined;
  }

  /**
   * Takes `s`'s tokens (a refresh's, here or by another process sharing the store) when the
   * current session is still the one they were made for, `from` (same device, same access
   * token); false, changing nothing, when it is not (logged out or in again meanwhile).
   */
  replaceTokens(from: StoredSession, s: StoredSession): boolean {
    const current = this.#current;
    if (
      current === undefined ||
      current.accessToken !== from.accessToken ||
      current.userId !== s.userId ||
      current.deviceId !== s.deviceId ||
      current.homeserverUrl !== s.homeserverUrl ||
      !isAccessToken(s.accessToken)
    ) {
      return false;
    }
    const { refreshClaim: _, ...tokens } = s;
    this.#current = tokens;
    this.#host.tokensTaken?.(tokens);
    return true;
  }

  /** Password login. Logging in again as the stored user reuses the stored device. */
  async passwordLogin(opts: PasswordLogin): Promise<LoginAnswer> {
    const stored = await this.#host.store.loadSession();
    const sameUser =
      stored && stored.homeserverUrl === this.#host.homeserverUrl && sameUserId(stored.userId, opts.user);
    const deviceId = opts.deviceId ?? (sameUser ? stored.deviceId : undefined);
    return this.#login({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: opts.user },
      password: opts.password,
      ...(deviceId ? { device_id: deviceId } : {}),
      ...(opts.deviceDisplayName ? { initial_device_display_name: opts.deviceDisplayName } : {}),
    });
  }

  /** The login flows the server offers (`GET /login`). */
  loginFlows(): Promise<LoginFlow[]> {
    return fetchLoginFlows(this.#host.call);
  }

  /** Login with an `m.login.token` (e.g. from SSO). */
  tokenLogin(token: string, opts: { deviceId?: string; deviceDisplayName?: string }): Promise<LoginAnswer> {
    return this.#login({
      type: "m.login.token",
      token,
      ...(opts.deviceId ? { device_id: opts.deviceId } : {}),
      ...(opts.deviceDisplayName ? { initial_device_display_name: opts.deviceDisplayName } : {}),
    });
  }

  async #login(body: LoginRequest): Promise<LoginAnswer> {
    const raw = await this.#host.call({
      method: "POST",
      path: path`/_matrix/client/v3/login`,
      body: this.#host.refreshTokens === true ? { ...body, refresh_token: true } : body,
      auth: false,
      schema: emptyResponseSchema,
    });
    const res = await this.#checkedAnswer(raw, loginResponseSchema, "POST /_matrix/client/v3/login");
    return {
      user_id: res.user_id,
      access_token: res.access_token,
      device_id: res.device_id,
      ...checkedTokenFields(res, "POST /_matrix/client/v3/login", this.#host.warn),
    };
  }

  /**
   * Registers an account (servers with open registration, completing the `m.login.dummy` stage),
   * logged in.
   */
  async register(opts: RegisterOptions): Promise<LoginAnswer> {
    const body: RegisterRequest = {
      username: opts.username,
      password: opts.password,
      ...(opts.deviceId ? { device_id: opts.deviceId } : {}),
      ...(opts.deviceDisplayName ? { initial_device_display_name: opts.deviceDisplayName } : {}),
      ...(this.#host.refreshTokens === true ? { refresh_token: true } : {}),
    };
    const req = (b: RegisterRequest) =>
      this.#host.call({
        method: "POST",
        path: path`/_matrix/client/v3/register`,
        body: b,
        auth: false,
        schema: emptyResponseSchema,
      });
    let raw: z.output<typeof emptyResponseSchema>;
    try {
      raw = await req(body);
    } catch (err) {
      const uia =
        err instanceof MatrixError && err.httpStatus === 401
          ? uiaResponseSchema.safeParse(err.body)
          : undefined;
      if (!uia?.success) throw err;
      const dummyOnly = uia.data.flows.some((f) => f.stages.length === 1 && f.stages[0] === "m.login.dummy");
      if (!dummyOnly)
        throw new ClientError(
          "UNSUPPORTED_AUTH",
          "registration requires interactive auth stages this client cannot complete",
        );
      raw = await req({
        ...body,
        auth: { type: "m.login.dummy", ...(uia.data.session ? { session: uia.data.session } : {}) },
      });
    }
    const res = await this.#checkedAnswer(raw, registerResponseSchema, "POST /_matrix/client/v3/register");
    if (!res.access_token || !res.device_id) {
      throw new ClientError("UNSUPPORTED_AUTH", "the server registered the account without logging it in");
    }
    return {
      user_id: res.user_id,
      access_token: res.access_token,
      device_id: res.device_id,
      ...checkedTokenFields(res, "POST /_matrix/client/v3/register", this.#host.warn),
    };
  }

  /**
   * A login's or registration's answer `raw` as `schema` has it. One that is not well-formed is
   * refused (`MalformedResponseError`, as any malformed answer), but by then the server made its
   * device: a well-formed access token in it first logs that device out (best effort), so a
   * refused answer leaves no device that nobody holds.
   */
  async #checkedAnswer<S extends z.ZodMiniType>(
    raw: z.output<typeof emptyResponseSchema>,
    schema: S,
    endpoint: string,
  ): Promise<z.output<S>> {
    const parsed = schema.safeParse(raw);
    if (parsed.success) return parsed.data;
    const token = raw.access_token;
    if (isAccessToken(token)) {
      await this.#host
        .call({
          method: "POST",
          path: path`/_matrix/client/v3/logout`,
          auth: { token },
          schema: emptyResponseSchema,
        })
        .catch(() => undefined);
    }
    throw new MalformedResponseError(endpoint, 200, schemaIssues(parsed.error));
  }

  /**
   * The session a login's response makes (not saved yet). Its refresh token and expiry only with
   * a refresh token: an access token that expires without one cannot be renewed anyway.
   */
  sessionOf(res: LoginAnswer): StoredSession {
    return {
      homeserverUrl: this.#host.homeserverUrl,
      userId: res.user_id,
      deviceId: res.device_id,
      accessToken: res.access_token,
      ...refreshFields(res, (this.#host.clock ?? systemClock).now()),
    };
  }

  /**
   * Makes `s` the current session. `save`: it came from the caller, not the store, so it is saved
   * (clearing the store when it held another account or device). `since`: what the store held when
   * the login that made `s` began; the save is refused (`SESSION_CONFLICT`) if the store holds
   * another session by then (another tab's login), checked and saved in one step where the store
   * can (`ClientStore.saveSessionIf`).
   */
  async adopt(
    s: StoredSession,
    save: boolean,
    since?: { readonly stored: StoredSession | undefined },
  ): Promise<void> {
    // The token must only ever go to the server that issued it.
    if (normalizeBaseUrl(s.homeserverUrl) !== this.#host.homeserverUrl) {
      throw new ClientError("INVALID_ARGUMENT", "the session belongs to another homeserver");
    }
    // Refused here, not by fetch: its error would quote the whole header, token included.
    if (!isAccessToken(s.accessToken)) {
      throw new ClientError(
        "INVALID_ARGUMENT",
        "the session's access token is not one an HTTP header can carry",
      );
    }
    // A refresh claim is the store's business, not the session's (`TokenRefresher`).
    const { refreshClaim: _, ...session } = s;
    if (save) {
      const store = this.#host.store;
      // Still the session the login began with, or none (a logout meanwhile is no conflict).
      const expected = (stored: StoredSession | undefined): boolean =>
        since === undefined || stored === undefined || sameSession(stored, since.stored);
      let saved = true;
      if (store.saveSessionIf !== undefined) saved = await store.saveSessionIf(session, expected);
      else {
        const stored = await store.loadSession();
        saved = expected(stored);
        if (saved) {
          if (stored && (stored.userId !== s.userId || stored.deviceId !== s.deviceId)) await store.clear();
          await store.saveSession(session);
        }
      }
      if (!saved) {
        throw new ClientError(
          "SESSION_CONFLICT",
          "another tab or process saved its session while this login ran; this login's session was not saved over it",
        );
      }
    }
    this.#current = session;
    this.#host.tokensTaken?.(session);
  }

  /**
   * Drops the session and clears the store while it holds this session: a store shared with
   * other tabs may hold one of theirs saved since, which stays. `deviceGone`: the server deleted
   * this device just now, so any session of it (another tab's token too) is dead.
   */
  async forget(deviceGone: boolean): Promise<void> {
    const ended = this.#current;
    this.drop();
    const store = this.#host.store;
    const ours = (stored: StoredSession | undefined): boolean =>
      stored === undefined ||
      (stored.userId === ended?.userId &&
        stored.deviceId === ended.deviceId &&
        (deviceGone || stored.accessToken === ended.accessToken));
    // Checked and cleared in one step: a session another tab saves meanwhile is kept.
    if (store.clearIf !== undefined) await store.clearIf(ours);
    else if (ours(await store.loadSession())) await store.clear();
  }

  /**
   * Invalidates the access token server-side (the device with it). True when the server did so
   * now; false when it no longer knew the token (the device may have been logged in again since).
   */
  async revoke(): Promise<boolean> {
    try {
      await this.#host.call({
        method: "POST",
        path: path`/_matrix/client/v3/logout`,
        body: {},
        schema: emptyResponseSchema,
      });
      return true;
    } catch (err) {
      // A token the server no longer knows is as logged out as it gets.
      if (!(err instanceof MatrixError && err.errcode === "M_UNKNOWN_TOKEN")) throw err;
      return false;
    }
  }
}

/**
 * The refresh token and expiry of a login's or refresh's answer `res`, received at `now`: none
 * without a refresh token (an empty one counts as none).
 */
export function refreshFields(
  res: TokenFields,
  now: number,
): { refreshToken?: string; accessTokenExpiresAt?: number } {
  if (res.refresh_token === undefined || res.refresh_token.length === 0) return {};
  return {
    refreshToken: res.refresh_token,
    ...(res.expires_in_ms !== undefined ? { accessTokenExpiresAt: now + res.expires_in_ms } : {}),
  };
}

function sameSession(a: StoredSession, b: StoredSession | undefined): boolean {
  return (
    b !== undefined &&
    a.homeserverUrl === b.homeserverUrl &&
    a.userId === b.userId &&
    a.deviceId === b.deviceId &&
    a.accessToken === b.accessToken
  );
}

/** Whether `given` (user ID or localpart) names the stored `userId`. */
function sameUserId(userId: string, given: string): boolean {
  return given.startsWith("@") ? given === userId : userId.startsWith(`@${given}:`);
}
