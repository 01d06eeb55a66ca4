// A `MatrixClient` session's lifecycle across the client's parts: login and registration (with
// the refused login's device logged out again), restore, logout and close. Session first, then
// synced state, the sync loop and E2EE on the way up; the reverse on the way down.
import type { ClientStore, StoredSession } from "./client-store/index.ts";
import { EncryptionSession } from "./encryption/session.ts";
import { ClientError } from "./errors.ts";
import { errorSummary } from "./events/emitter.ts";
import type { Logger } from "./logger.ts";
import type { Sender } from "./rooms/sender.ts";
import type { TokenRefresher } from "./session/refresh.ts";
import type { LoginAnswer, PasswordLogin, RegisterOptions, Session, SessionInfo } from "./session/session.ts";
import type { SyncRunner } from "./sync/runner.ts";
import type { SyncedState } from "./sync/state.ts";

export interface ClientLifecycleParts {
  readonly store: ClientStore;
  readonly logger: Logger;
  readonly session: Session;
  readonly synced: SyncedState;
  readonly sync: SyncRunner;
  readonly sender: Sender;
  readonly e2ee: EncryptionSession;
  /** Access-token renewal: paused (a renewal under way finished) before the client store closes. */
  readonly refresher: Pick<TokenRefresher, "pause" | "resume">;
}

export class ClientLifecycle {
  readonly #parts: ClientLifecycleParts;
  /** A close asked for from the sync loop's own work, going on after it (see `close`). */
  #closing: Promise<void> | undefined;
  /** A logout asked for from the sync loop's own work, going on after it (see `logout`). */
  #loggingOut: Promise<void> | undefined;

  constructor(parts: ClientLifecycleParts) {
    this.#parts = parts;
  }

  /**
   * Runs a call that starts a session (`login`, `loginWithToken`, `register`, `restore`): refused
   * from the sync loop's own work, where its stop of the loop would wait for the handling that
   * waits for it (and going on without waiting, that handling would write the old session's rooms
   * over the new one's); after a logout asked for from there and still going on.
   */
  #starting<T>(name: string, start: () => Promise<T>): Promise<T> {
    if (this.#parts.sync.inOwnWork) {
      return Promise.reject(
        new ClientError(
          "IN_SYNC_HANDLING",
          `${name}() cannot run from a listener of the sync response being handled (or work it awaits): call it once that listener returned`,
        ),
      );
    }
    this.#parts.refresher.resume();
    const logout = this.#loggingOut;
    if (logout === undefined) return start();
    return logout.then(start, start);
  }

  /** `MatrixClient.login`: the device the crypto store remembers when none is given. */
  login(opts: PasswordLogin): Promise<SessionInfo> {
    return this.#starting("login", () => this.#login(opts));
  }

  async #login(opts: PasswordLogin): Promise<SessionInfo> {
    const { session, e2ee } = this.#parts;
    let login = opts;
    if (opts.deviceId === undefined) {
      const deviceId = await e2ee.rememberedDevice(opts.user);
      if (deviceId !== undefined) login = { ...opts, deviceId };
    }
    try {
      return await this.#loginOrDrop(login.deviceId, async () => session.passwordLogin(login));
    } finally {
      await e2ee.releasePreopened();
    }
  }

  loginWithToken(
    token: string,
    opts: { deviceId?: string; deviceDisplayName?: string },
  ): Promise<SessionInfo> {
    return this.#starting("loginWithToken", () => this.#loginWithToken(token, opts));
  }

  async #loginWithToken(
    token: string,
    opts: { deviceId?: string; deviceDisplayName?: string },
  ): Promise<SessionInfo> {
    const since = { stored: await this.#parts.store.loadSession() };
    try {
      return await this.#startSession(await this.#parts.session.tokenLogin(token, opts), since);
    } catch (e) {
      if (isSessionConflict(e)) this.#parts.session.drop();
      throw e;
    }
  }

  register(opts: RegisterOptions): Promise<SessionInfo> {
    return this.#starting("register", () =>
      this.#loginOrDrop(opts.deviceId, () => this.#parts.session.register(opts)),
    );
  }

  /**
   * Logs in through `login` and starts the session. When the server created a device for it and
   * the crypto store then refused the account, or another tab's login saved its session to the
   * shared client store meanwhile (`SESSION_CONFLICT`), logs that device out again, so a refused
   * login leaves no stray device (with no keys) on the account.
   */
  async #loginOrDrop(deviceId: string | undefined, login: () => Promise<LoginAnswer>): Promise<SessionInfo> {
    const before = await this.#parts.store.loadSession();
    try {
      return await this.#startSession(await login(), { stored: before });
    } catch (e) {
      if (deviceId === undefined) await this.#dropNewDevice(e, before);
      // Not saved: not this tab's session either (the store holds another tab's).
      if (isSessionConflict(e)) this.#parts.session.drop();
      throw e;
    }
  }

  /** `since`: what the store held as the login began (its session is saved only over that, or none). */
  async #startSession(
    res: LoginAnswer,
    since: { readonly stored: StoredSession | undefined },
  ): Promise<SessionInfo> {
    const { session: current, synced, sync, e2ee, logger } = this.#parts;
    const session = current.sessionOf(res);
    // A send from here until encryption runs waits for it (the crypto store opens in `prepare`),
    // and one after a failed start is refused: never plaintext for want of the crypto store.
    return e2ee.starting(async () => {
      // Current but unsaved until the crypto store accepted it: a refused login (its device logged
      // out with this session) leaves the session store as it was, e.g. another tab's session.
      await sync.stop();
      // Nothing of a previous session of another account stays should the start below fail: not
      // its encryption (which would go on encrypting, as that account, for this session), nor its
      // rooms (whose state would still say them encrypted).
      await e2ee.leaveOtherAccount(session);
      const previous = current.info;
      if (previous?.userId !== session.userId || previous.deviceId !== session.deviceId) synced.reset();
      await current.adopt(session, false);
      await e2ee.prepare(session);
      await this.#restore(session, since);
      logger.info({ userId: session.userId, deviceId: session.deviceId }, "logged in");
      return current.info!;
    });
  }

  async #dropNewDevice(error: unknown, before: StoredSession | undefined): Promise<void> {
    const created = this.#parts.session.info;
    if (!(EncryptionSession.refusedLogin(error) || isSessionConflict(error)) || created === undefined) return;
    if (before?.userId === created.userId && before.deviceId === created.deviceId) return;
    try {
      await this.#endSession();
    } catch (e) {
      this.#parts.logger.warn(
        { deviceId: created.deviceId, err: String(e) },
        "could not log out the refused device",
      );
    }
  }

  /**
   * `MatrixClient.restore`: the session from the argument or the store. A send made meanwhile
   * waits for encryption to start, and one after it failed is refused (`EncryptionSession`).
   */
  restore(session?: StoredSession): Promise<SessionInfo> {
    return this.#starting("restore", () => this.#parts.e2ee.starting(() => this.#restore(session)));
  }

  async #restore(
    session?: StoredSession,
    since?: { readonly stored: StoredSession | undefined },
  ): Promise<SessionInfo> {
    const { store, session: current, synced, sync, e2ee } = this.#parts;
    const s = session ?? (await store.loadSession());
    if (!s) throw new ClientError("NOT_LOGGED_IN", "no session to restore");
    await sync.stop();
    await e2ee.leaveOtherAccount(s); // before anything of the new session can fail
    await current.adopt(s, session !== undefined, since);
    synced.reset(); // nothing of another session stays, even if loading fails
    const saved = await store.loadSync();
    synced.reset(saved, s.userId);
    sync.begin(s.userId, saved?.nextBatch);
    const info = current.info!;
    await e2ee.start(info);
    return info;
  }

  /**
   * `MatrixClient.logout`. Called from the sync loop's own work (a listener of a response being
   * handled, or what it awaits), where stopping the loop would wait for itself, it returns at once
   * and the logout goes on once that work returned: the response is handled and saved, then the
   * session is logged out and forgotten (never before that save). A logout, login, restore or close
   * called meanwhile from elsewhere waits for it; one from the loop's work again is that one.
   * Where no code is known as the loop's work (browsers), it is a logout from outside, which does
   * not wait for the listeners of the response being handled (that response left unsaved).
   * When the server does not log the session out (the network, a 5xx), the session goes on: the
   * sync loop (if it ran) and the dehydration schedule start again, and the logout rejects with
   * `ClientError("LOGOUT_FAILED")`, the server's error as its `cause` (from a listener: logged).
   */
  logout(): Promise<void> {
    const { sync, session, logger } = this.#parts;
    const own = sync.inOwnWork;
    const pending = this.#loggingOut;
    if (pending !== undefined) return own ? Promise.resolve() : pending;
    // Read before anything stops it: what to start again should the logout fail.
    const syncing = loopRuns(sync);
    if (!own) return this.#logout(syncing);
    try {
      session.require();
    } catch (e) {
      return Promise.reject(e);
    }
    sync.requestStop();
    const out = sync.outsideOwnWork(() => this.#logout(syncing));
    this.#loggingOut = out;
    const over = () => {
      if (this.#loggingOut === out) this.#loggingOut = undefined;
    };
    out.then(over, (err: unknown) => {
      over();
      logger.warn({ err: errorSummary(err) }, "logging out failed");
    });
    return Promise.resolve();
  }

  /** `syncing`: the loop ran when the logout was asked for. */
  async #logout(syncing: boolean): Promise<void> {
    await this.#endSession({ syncing });
    await this.#parts.e2ee.stop();
  }

  /**
   * Logs the session out on the server and forgets it here (the E2EE part is the caller's, but for
   * a logout's `own` device: the dehydration schedule of this session's device, paused before the
   * token dies). A logout the server refused (the token still valid) leaves the session going:
   * what it stopped starts again, and `ClientError("LOGOUT_FAILED")` is thrown.
   */
  async #endSession(own?: { readonly syncing: boolean }): Promise<void> {
    const { session, sync, sender, e2ee, logger } = this.#parts;
    session.require();
    await sync.stop();
    await sender.drain();
    // Its upload under way lands first, and no rotation starts after: on the revoked token it
    // would fail (an error reported) while the logout went fine.
    if (own !== undefined) await e2ee.pauseDehydration();
    let deviceGone: boolean;
    try {
      deviceGone = await session.revoke();
    } catch (e) {
      if (own === undefined) throw e;
      e2ee.resumeDehydration();
      if (own.syncing) {
        sync.start().catch((err: unknown) => {
          logger.warn({ err: errorSummary(err) }, "sync did not start again after a failed logout");
        });
      }
      throw new ClientError("LOGOUT_FAILED", "the server did not log the session out: it goes on", {
        cause: e,
      });
    }
    await this.forgetSession(deviceGone);
  }

  /** Forgets the session here: the loop's position, what sync knew, the stored session. */
  async forgetSession(deviceGone: boolean): Promise<void> {
    const { session, synced, sync } = this.#parts;
    sync.end();
    synced.reset();
    await session.forget(deviceGone);
  }

  /**
   * `MatrixClient.close`. Called from the sync loop's own work (a listener of a response being
   * handled, or what it awaits), where waiting for the handling would wait for itself, it returns
   * at once and the close goes on once that work returned: the response is handled and saved,
   * then the stores close. A close called after that (from anywhere else) waits for it. Where no
   * code is known as the loop's work (browsers), every close is one from outside: its stop of the
   * loop no longer waits for listeners (`SyncLoop.requestStop`), so from a listener too it returns
   * once the stores are closed, the response being handled left unsaved.
   */
  close(): Promise<void> {
    const { sync, logger } = this.#parts;
    if (!sync.inOwnWork) return this.#closing ?? this.#closeFromOutside();
    sync.requestStop();
    if (this.#closing === undefined) {
      const closing = sync.outsideOwnWork(() => this.#close());
      closing.catch((err: unknown) => logger.warn({ err: errorSummary(err) }, "closing the client failed"));
      this.#closing = closing;
    }
    return Promise.resolve();
  }

  /**
   * A close from outside the loop's work, known while under way: a `close()` from a listener
   * meanwhile (the loop still handling a response) is this one, not a second close of the stores.
   */
  #closeFromOutside(): Promise<void> {
    const closing = this.#close();
    this.#closing = closing;
    const over = () => {
      if (this.#closing === closing) this.#closing = undefined;
    };
    closing.then(over, over);
    return closing;
  }

  async #close(): Promise<void> {
    const { store, sync, sender, e2ee } = this.#parts;
    // A logout asked for from a sync listener goes first (it writes to the stores).
    const logout = this.#loggingOut;
    if (logout !== undefined) await logout.catch(() => undefined);
    await sync.stop();
    await sender.drain();
    // A send's member list fetch (after the loop's last save) corrected a room: saved before closing.
    await sync
      .saveChangedRooms()
      .catch((err: unknown) =>
        this.#parts.logger.warn({ err: errorSummary(err) }, "saving rooms at close failed"),
      );
    // A token renewal under way saves its tokens before the store closes; none starts after.
    await this.#parts.refresher.pause();
    await store.close?.();
    await e2ee.stop();
  }
}

/** The sync loop runs (its state is that of a running loop: `initial`, `syncing`, `backoff`). */
function loopRuns(sync: SyncRunner): boolean {
  return sync.state !== "stopped" && sync.state !== "error";
}

/** Another tab's login saved its session while this one ran (`Session.adopt`). */
function isSessionConflict(e: unknown): boolean {
  return e instanceof ClientError && e.code === "SESSION_CONFLICT";
}
