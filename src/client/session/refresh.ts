// Refresh tokens (client-server API, "Refreshing access tokens"): the access token is renewed
// shortly before it expires, and when the server answers that it did (401 M_UNKNOWN_TOKEN with
// `soft_logout`). One refresh at a time serves every request that needs it (the sync long-poll,
// sends, uploads), and across the processes or tabs sharing the client store, one at a time too:
// a refresh token is spent by its use, so two of them refreshing at once would log each other out.
// Before refreshing, the stored session is read again (another process may have refreshed it
// already: its tokens are taken), and the refresh is claimed in the store (`refreshClaim`, set and
// cleared in one step each, where the store can: `saveSessionIf`), the others waiting for its tokens.
// A refresh the server refuses ends the session as a rejected access token does: the request fails
// with 401 M_UNKNOWN_TOKEN, and the sync loop logs the session out (`session.loggedOut`). Not when
// another process had claimed that refresh: it most likely spent the token and saves its tokens
// late (a failed save is tried again), so they are waited for instead.

import { type RefreshResponse, refreshResponseSchema } from "../../wire/index.ts";
import type { ApiCall } from "../call.ts";
import type { ClientStore, StoredSession } from "../client-store/index.ts";
import { sameStoredSession } from "../client-store/store.ts";
import type { Clock } from "../clock.ts";
import { MatrixError } from "../errors.ts";
import { errorSummary } from "../events/emitter.ts";
import { path, type TokenRenewal } from "../http.ts";
import type { Logger } from "../logger.ts";
import { refreshFields, type Session } from "./session.ts";
import { type AnswerWarning, checkedTokenFields } from "./token-fields.ts";

/**
 * How long before its expiry an access token is renewed, at most: a token is renewed once half
 * of what was left of its lifetime when the client got it has passed, and never later than this
 * before it expires (a request on it must still reach the server in time).
 */
export const TOKEN_REFRESH_MARGIN_MS = 60_000;
/**
 * How long a process's claim to refresh the stored session holds (`StoredSession.refreshClaim`):
 * the others wait for its tokens until then, and go on without it after (a process that died
 * while refreshing).
 */
export const REFRESH_CLAIM_MS = 30_000;
/** How often a process waiting for another's refresh reads the stored session again. */
export const REFRESH_CLAIM_POLL_MS = 250;
/** After a renewal ahead of expiry failed (the network, a 5xx), how long until the next try. */
export const REFRESH_RETRY_MS = 5_000;
/** After saving renewed tokens failed, how long until the save is tried again. */
export const REFRESH_SAVE_RETRY_MS = 1_000;
/**
 * Tries at saving renewed tokens after the first failed, `REFRESH_SAVE_RETRY_MS` apart: a minute,
 * the others' wait for this process's claim and then for its tokens (`REFRESH_CLAIM_MS` each).
 */
export const MAX_REFRESH_SAVE_RETRIES = 60;

export interface TokenRefresherHost {
  /** Sends `/refresh` (unauthenticated: it never comes back here). */
  readonly call: ApiCall;
  readonly store: ClientStore;
  readonly session: Session;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * The session took other tokens (renewed here, or by another process sharing the store): for an
   * application that keeps the session itself (`restore(session)`) and must save them.
   */
  readonly renewed?: (session: StoredSession) => void;
  /** Told of a renewal's token field left out (`checkedTokenFields`). */
  readonly warn?: AnswerWarning;
}

/**
 * Why tokens are wanted: `due`, the access token expires soon; `expired`, the server said it did
 * (soft logout); `revoked`, the server no longer knows it (another process's refresh may have
 * replaced it: only the store is looked at).
 */
type Need = "due" | "expired" | "revoked";

/** Renewed tokens whose save failed, and the save to try again. */
interface UnsavedTokens {
  readonly next: StoredSession;
  readonly save: () => Promise<void>;
}

export class TokenRefresher implements TokenRenewal {
  readonly #host: TokenRefresherHost;
  /** This process's name in refresh claims. */
  readonly #id = randomName();
  /** The renewal under way: every request that needs new tokens waits for this one. */
  #flight: Promise<void> | undefined;
  /** When the current access token is renewed ahead of expiry (`TOKEN_REFRESH_MARGIN_MS`). */
  #plan: { readonly accessToken: string; readonly at: number } | undefined;
  /** The last refresh token the server refused, and the error requests fail with since. */
  #refused: { readonly refreshToken: string; readonly error: MatrixError } | undefined;
  /** No renewal ahead of expiry before this (one failed for the network or a 5xx). */
  #pausedUntil = 0;
  /**
   * Access tokens this process moved past (the newest `MAX_PASSED_TOKENS`): the store holding one
   * holds older tokens than this process (its save of renewed ones failed), never to be taken.
   */
  readonly #passed = new Set<string>();

  /** The client is closing: no renewal starts (one under way finishes and saves first). */
  #paused = false;
  /** Renewed tokens whose save failed, and the save to try again (`#retrySave`). */
  #unsaved: UnsavedTokens | undefined;

  constructor(host: TokenRefresherHost) {
    this.#host = host;
  }

  /**
   * Before the client store closes: no renewal starts from now, and one under way (its `/refresh`
   * sent, or waiting for another process's claim) is waited for. A renewal whose new tokens could
   * no longer be saved would leave the store with a spent refresh token: the next start logged out.
   */
  async pause(): Promise<void> {
    this.#paused = true;
    await this.#flight?.catch(() => undefined);
    // Renewed tokens not saved yet: a last try while the store is open.
    const unsaved = this.#unsaved;
    if (unsaved !== undefined && this.#host.session.current?.accessToken === unsaved.next.accessToken) {
      await unsaved.save().then(
        () => {
          if (this.#unsaved === unsaved) this.#unsaved = undefined;
        },
        (err: unknown) =>
          this.#host.logger.warn({ err: errorSummary(err) }, "saving the renewed tokens failed"),
      );
    }
  }

  /** A session starts again on this client (after `pause`). */
  resume(): void {
    this.#paused = false;
  }

  fresh(): Promise<void> | undefined {
    const flight = this.#flight;
    // A request that would go out on the token being replaced waits for the new one (whatever
    // came of it, the request goes: a failure is its own to meet).
    if (flight !== undefined) return flight.catch(() => undefined);
    if (this.#paused) return undefined;
    const s = this.#host.session.current;
    if (s?.refreshToken === undefined || s.accessTokenExpiresAt === undefined) return undefined;
    const now = this.#host.clock.now();
    if (now < this.#dueAt(s) || now < this.#pausedUntil) return undefined;
    return this.#renew(s, "due").catch((err: unknown) => {
      if (err instanceof MatrixError && err === this.#refused?.error) throw err;
      // The token may still be good: the request goes, and the next try waits a little.
      this.#pausedUntil = this.#host.clock.now() + REFRESH_RETRY_MS;
      this.#host.logger.warn(
        { err: errorSummary(err) },
        "renewing the access token failed; trying again later",
      );
    });
  }

  async rejected(token: string, error: MatrixError): Promise<boolean> {
    const s = this.#host.session.current;
    if (s === undefined) return false;
    // Renewed since the request went out.
    if (s.accessToken !== token) return true;
    if (s.refreshToken === undefined) return false;
    await this.#renew(s, error.body.soft_logout === true ? "expired" : "revoked");
    const now = this.#host.session.current;
    return now !== undefined && now.accessToken !== token;
  }

  /** The session took `s`'s tokens: their renewal is planned from now (`Session.tokensTaken`). */
  planFor(s: StoredSession): void {
    this.#dueAt(s);
  }

  /** When `s`'s access token is due for renewal (planned once per token, when first seen). */
  #dueAt(s: StoredSession): number {
    const expires = s.accessTokenExpiresAt;
    if (expires === undefined) return Number.POSITIVE_INFINITY;
    if (this.#plan?.accessToken !== s.accessToken) {
      const left = Math.max(0, expires - this.#host.clock.now());
      this.#plan = { accessToken: s.accessToken, at: expires - Math.min(TOKEN_REFRESH_MARGIN_MS, left / 2) };
    }
    return this.#plan.at;
  }

  /** New tokens for the session `held` is, for `need`: one renewal at a time, which joiners wait for. */
  async #renew(held: StoredSession, need: Need): Promise<void> {
    for (;;) {
      const flight = this.#flight;
      if (flight === undefined) break;
      await flight;
      if (this.#host.session.current?.accessToken !== held.accessToken) return;
    }
    const flight = this.#run(held, need).finally(() => {
      if (this.#flight === flight) this.#flight = undefined;
    });
    this.#flight = flight;
    await flight;
  }

  async #run(start: StoredSession, need: Need): Promise<void> {
    const { store, session, clock } = this.#host;
    let held = start;
    // Rounds spent on claims (waiting for another process's, or losing the race to write one):
    // bounded, should its clock not move or the store keep refusing; past them, no claim.
    let rounds = 0;
    // Another process claimed this refresh before: a refusal then most likely means it spent the
    // token and has not saved its tokens yet (see `#awaitOthersTokens`).
    let othersClaimed = false;
    for (;;) {
      // Closing: the request goes on the tokens it has.
      if (this.#paused) return;
      const stored = await store.loadSession();
      const ours = stored !== undefined && sameDevice(stored, held);
      if (ours && this.#newer(stored, held)) {
        // Another process or tab renewed the tokens: take them, refreshing only if they are due too.
        if (!this.#take(held, stored)) return;
        held = session.current ?? held;
        if (need !== "due" || clock.now() < this.#dueAt(held)) return;
      }
      if (need === "revoked") return;
      const refreshToken = held.refreshToken;
      if (refreshToken === undefined) return;
      const refused = this.#refused;
      if (refused?.refreshToken === refreshToken) throw refused.error;
      let claimed: StoredSession | undefined;
      if (ours && store.saveSessionIf !== undefined && rounds < MAX_CLAIM_ROUNDS) {
        rounds++;
        const now = clock.now();
        const claim = stored.refreshClaim;
        if (claim !== undefined && claim.by !== this.#id) othersClaimed = true;
        if (claim !== undefined && claim.by !== this.#id && claim.until > now) {
          await clock.sleep(REFRESH_CLAIM_POLL_MS);
          continue;
        }
        const mine = { ...stored, refreshClaim: { by: this.#id, until: now + REFRESH_CLAIM_MS } };
        if (!(await store.saveSessionIf(mine, (s) => sameStoredSession(s, stored)))) continue;
        claimed = mine;
      }
      await this.#refresh(held, refreshToken, claimed, othersClaimed);
      return;
    }
  }

  /**
   * Trades `refreshToken` for new tokens, saves and takes them; `claimed`: the claim it holds;
   * `othersClaimed`: another process had claimed this refresh (its claim since gone or expired).
   */
  async #refresh(
    held: StoredSession,
    refreshToken: string,
    claimed: StoredSession | undefined,
    othersClaimed: boolean,
  ): Promise<void> {
    const { clock, logger, call } = this.#host;
    let res: RefreshResponse;
    try {
      res = await call({
        method: "POST",
        path: path`/_matrix/client/v3/refresh`,
        body: { refresh_token: refreshToken },
        auth: false,
        schema: refreshResponseSchema,
      });
    } catch (err) {
      await this.#release(claimed);
      if (!isRefusal(err)) throw err;
      // Spent by another process meanwhile (one that shares the store without claims)?
      if (await this.#takeStored(held)) return;
      // Spent by the process that claimed it, whose save is late (it retries): not a logout.
      if (othersClaimed && (await this.#awaitOthersTokens(held))) return;
      const error = sessionEnded(err);
      this.#refused = { refreshToken, error };
      logger.warn(
        { errcode: err.errcode, status: err.httpStatus, deviceId: held.deviceId },
        "the server refused the refresh token: the session is over",
      );
      throw error;
    }
    // Its expiry or new refresh token off: left out, warned of (the access token is good).
    const fields = checkedTokenFields(res, "POST /_matrix/client/v3/refresh", this.#host.warn);
    const next: StoredSession = {
      homeserverUrl: held.homeserverUrl,
      userId: held.userId,
      deviceId: held.deviceId,
      accessToken: res.access_token,
      // No new refresh token: the old one is kept (spec).
      ...refreshFields({ ...fields, refresh_token: fields.refresh_token || refreshToken }, clock.now()),
    };
    const unsaved = await this.#save(held, next, claimed);
    if (this.#take(held, next)) {
      // Tried again in the background once the session holds them (this process goes on).
      if (unsaved !== undefined) {
        this.#unsaved = unsaved;
        void this.#retrySave(unsaved);
      }
      this.#pausedUntil = 0;
      logger.debug({ deviceId: held.deviceId }, "renewed the access token");
    }
  }

  /**
   * Saves the new tokens over the session they renew: with a claim, while it still holds (else
   * another process took over, and its tokens are the ones kept); without, while the store holds
   * that device's session with the old token. Not saved, they are this process's only; a save that
   * failed is returned, to be tried again.
   */
  async #save(
    held: StoredSession,
    next: StoredSession,
    claimed: StoredSession | undefined,
  ): Promise<UnsavedTokens | undefined> {
    const { store, logger } = this.#host;
    const expected = (s: StoredSession | undefined): boolean =>
      s !== undefined &&
      sameDevice(s, held) &&
      (claimed !== undefined
        ? s.refreshClaim?.by === this.#id
        : s.accessToken === held.accessToken || this.#passed.has(s.accessToken));
    const save = async (isExpected: (s: StoredSession | undefined) => boolean): Promise<void> => {
      let saved: boolean;
      if (store.saveSessionIf !== undefined) saved = await store.saveSessionIf(next, isExpected);
      else {
        saved = isExpected(await store.loadSession());
        if (saved) await store.saveSession(next);
      }
      if (!saved)
        logger.info({ deviceId: held.deviceId }, "renewed tokens not saved: the store holds another session");
    };
    try {
      await save(expected);
      this.#unsaved = undefined;
    } catch (err) {
      logger.warn({ err: errorSummary(err), deviceId: held.deviceId }, "saving the renewed tokens failed");
      // The refresh token the store holds is spent: left there, another process sharing the store
      // would be refused and log the session out. To be tried again (returned), over the claim,
      // still ours or since expired, or over the stale tokens: either way nothing newer is stored.
      const stale = (s: StoredSession | undefined): boolean =>
        expected(s) || (s !== undefined && sameDevice(s, held) && !this.#newer(s, held));
      return { next, save: () => save(stale) };
    }
    return undefined;
  }

  /** Tries a failed save again until it goes through, the session moves past it, or the client closes. */
  async #retrySave(unsaved: UnsavedTokens): Promise<void> {
    const { clock, logger, session } = this.#host;
    for (let attempt = 1; attempt <= MAX_REFRESH_SAVE_RETRIES; attempt++) {
      await clock.sleep(REFRESH_SAVE_RETRY_MS);
      if (this.#paused || this.#unsaved !== unsaved) return;
      if (session.current?.accessToken !== unsaved.next.accessToken) break;
      try {
        await unsaved.save();
        break;
      } catch (err) {
        logger.warn({ err: errorSummary(err), attempt }, "saving the renewed tokens failed again");
      }
    }
    if (this.#unsaved === unsaved) this.#unsaved = undefined;
  }

  /** Takes the stored session's tokens if they are `held`'s device's and newer. */
  async #takeStored(held: StoredSession): Promise<boolean> {
    const stored = await this.#host.store.loadSession();
    return (
      stored !== undefined &&
      sameDevice(stored, held) &&
      this.#newer(stored, held) &&
      this.#take(held, stored)
    );
  }

  /**
   * After the server refused a refresh token another process had claimed: that process most
   * likely spent it and its save of the new tokens failed (it tries again, `#retrySave`). Its
   * tokens are waited for as its claim was (`REFRESH_CLAIM_MS`), then taken; true once they are.
   * Only if they never come is the session over (that process died with them).
   */
  async #awaitOthersTokens(held: StoredSession): Promise<boolean> {
    const { clock, logger } = this.#host;
    logger.info(
      { deviceId: held.deviceId },
      "refresh refused after another process's claim: waiting for its tokens",
    );
    const until = clock.now() + REFRESH_CLAIM_MS;
    for (let round = 0; round < MAX_CLAIM_ROUNDS && clock.now() < until && !this.#paused; round++) {
      await clock.sleep(REFRESH_CLAIM_POLL_MS);
      if (await this.#takeStored(held)) return true;
    }
    return false;
  }

  /** Whether the stored session `stored` holds other tokens than `held`, not older ones. */
  #newer(stored: StoredSession, held: StoredSession): boolean {
    return stored.accessToken !== held.accessToken && !this.#passed.has(stored.accessToken);
  }

  /** The session takes `next`'s tokens in place of `held`'s (`Session.replaceTokens`). */
  #take(held: StoredSession, next: StoredSession): boolean {
    if (!this.#host.session.replaceTokens(held, next)) return false;
    this.#passed.add(held.accessToken);
    for (const old of this.#passed) {
      if (this.#passed.size <= MAX_PASSED_TOKENS) break;
      this.#passed.delete(old);
    }
    const current = this.#host.session.current;
    if (current !== undefined) this.#host.renewed?.(current);
    return true;
  }

  /** Takes this process's claim off the stored session (a refresh that failed). */
  async #release(claimed: StoredSession | undefined): Promise<void> {
    const { store, logger } = this.#host;
    if (claimed === undefined || store.saveSessionIf === undefined) return;
    const { refreshClaim: _, ...unclaimed } = claimed;
    try {
      await store.saveSessionIf(unclaimed, (s) => s !== undefined && s.refreshClaim?.by === this.#id);
    } catch (err) {
      logger.warn({ err: errorSummary(err) }, "releasing the refresh claim failed");
    }
  }
}

/** How many access tokens a process remembers having moved past (`TokenRefresher.#passed`). */
const MAX_PASSED_TOKENS = 8;

/** Rounds of claiming (polls of another's claim, `REFRESH_CLAIM_MS` worth) before going on without. */
const MAX_CLAIM_ROUNDS = Math.ceil(REFRESH_CLAIM_MS / REFRESH_CLAIM_POLL_MS);

function sameDevice(a: StoredSession, b: StoredSession): boolean {
  return a.homeserverUrl === b.homeserverUrl && a.userId === b.userId && a.deviceId === b.deviceId;
}

/**
 * The server will not renew with this refresh token: 401 or 403 (the spec's `M_UNKNOWN_TOKEN`,
 * Synapse's `M_FORBIDDEN`), or those errcodes under another 4xx. Another 4xx (a 404 or 405 from a
 * proxy that does not route `/refresh`, `M_UNRECOGNIZED`) says nothing of the token: the request
 * fails with it and the session stays, its refresh token kept.
 */
function isRefusal(err: unknown): err is MatrixError {
  if (!(err instanceof MatrixError) || err.httpStatus < 400 || err.httpStatus >= 500 || err.isRateLimited)
    return false;
  return (
    err.httpStatus === 401 ||
    err.httpStatus === 403 ||
    err.errcode === "M_UNKNOWN_TOKEN" ||
    err.errcode === "M_FORBIDDEN"
  );
}

/**
 * The error a refused refresh fails requests with: the server's own when it is the 401
 * `M_UNKNOWN_TOKEN` the spec names; otherwise (Synapse answers a spent refresh token 403
 * `M_FORBIDDEN`) one like it, so the session ends the same way.
 */
function sessionEnded(err: MatrixError): MatrixError {
  if (err.httpStatus === 401 && err.errcode === "M_UNKNOWN_TOKEN") return err;
  return new MatrixError(401, {
    errcode: "M_UNKNOWN_TOKEN",
    error: `the server refused the refresh token (${err.errcode}, HTTP ${err.httpStatus})`,
    soft_logout: err.body.soft_logout === true,
  });
}

function randomName(): string {
  const rnd = new Uint8Array(8);
  globalThis.crypto.getRandomValues(rnd);
  return [...rnd].map((b) => b.toString(16).padStart(2, "0")).join("");
}
