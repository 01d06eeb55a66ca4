// A fake homeserver for refresh tokens, as a `fetch`: login and registration (with `refresh_token`),
// `/refresh` rotating tokens as the spec has it (the old refresh token good until a new token is
// used), and a few authenticated endpoints answering 401 M_UNKNOWN_TOKEN (`soft_logout: true`) once
// a token expired by the test's clock. Refreshes can be held, to line requests up behind one.

/** What the test does to the next `/refresh` answer. */
export type RefreshFault =
  | { kind: "refuse"; status: number; errcode: string; softLogout?: boolean }
  | { kind: "error"; status: number }
  /** The server refreshes, but the answer never arrives (the connection drops). */
  | { kind: "lost" };

interface AccessRow {
  expiresAt: number | undefined;
  /** The refresh token traded for it, revoked at its first use. */
  parent: string | undefined;
}

export class RefreshServer {
  /** Milliseconds since the epoch as the server counts them. */
  now = 1_000_000;
  /** Lifetime of the access tokens it issues with a refresh token. */
  lifetimeMs = 60_000;
  /** Every request's method and path, in order. */
  readonly requests: string[] = [];
  /** Bodies of `/login` and `/register`. */
  readonly logins: Record<string, unknown>[] = [];
  /** The refresh tokens `/refresh` was asked with, in order. */
  readonly refreshedWith: string[] = [];
  /** Faults for the next `/refresh` answers, first first. */
  readonly faults: RefreshFault[] = [];
  /** Every token issued (the tests check none reaches a log). */
  readonly issued: string[] = [];
  /**
   * Rewrites the JSON text of `/login`, `/register` and `/refresh` answers (a server whose answer
   * is off: `expires_in_ms` not a number, say); the tokens it issued stand as issued.
   */
  mangle: ((json: string, path: "/login" | "/register" | "/refresh") => string) | undefined;
  readonly #access = new Map<string, AccessRow>();
  /** Refresh token → the refresh token traded for it (its parent). */
  readonly #refresh = new Map<string, string | undefined>();
  #counter = 0;
  #held: { until: Promise<void>; arrived: () => void } | undefined;

  /**
   * Holds the next `/refresh` requests until `release()`; `arrived` resolves when the first comes.
   */
  hold(): { arrived: Promise<void>; release: () => void } {
    let release!: () => void;
    let arrived!: () => void;
    const until = new Promise<void>((r) => {
      release = r;
    });
    const came = new Promise<void>((r) => {
      arrived = r;
    });
    this.#held = { until, arrived };
    return {
      arrived: came,
      release: () => {
        this.#held = undefined;
        release();
      },
    };
  }

  /** How many `/refresh` requests came. */
  get refreshes(): number {
    return this.refreshedWith.length;
  }

  /** Revokes every token of the device (a logout elsewhere, an admin). */
  revokeAll(): void {
    this.#access.clear();
    this.#refresh.clear();
  }

  readonly fetch = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const u = new URL(url);
    const method = init.method ?? "GET";
    this.requests.push(`${method} ${u.pathname}`);
    const body =
      typeof init.body === "string" && init.body.length > 0
        ? (JSON.parse(init.body) as Record<string, unknown>)
        : {};
    const path = u.pathname.replace("/_matrix/client/v3", "");
    if (path === "/login" || path === "/register") {
      this.logins.push(body);
      const answer = { user_id: "@alice:hs", device_id: "DEV", ...this.#issue(body.refresh_token === true) };
      return this.#answer(answer, path);
    }
    if (path === "/refresh") return this.#refreshAnswer(String(body.refresh_token));
    const header = new Headers(init.headers).get("authorization") ?? "";
    const token = header.replace(/^Bearer /, "");
    const row = this.#access.get(token);
    if (row === undefined) return unknownToken(false);
    if (row.expiresAt !== undefined && this.now >= row.expiresAt) return unknownToken(true);
    if (row.parent !== undefined) {
      this.#refresh.delete(row.parent);
      row.parent = undefined;
    }
    if (path === "/account/whoami") return Response.json({ user_id: "@alice:hs", device_id: "DEV" });
    if (path === "/sync") return Response.json({ next_batch: `s${++this.#counter}` });
    if (path === "/logout") {
      this.revokeAll();
      return Response.json({});
    }
    if (method === "PUT" || method === "POST") return Response.json({});
    return Response.json({ errcode: "M_UNRECOGNIZED" }, { status: 404 });
  };

  async #refreshAnswer(refreshToken: string): Promise<Response> {
    this.refreshedWith.push(refreshToken);
    const held = this.#held;
    if (held !== undefined) {
      held.arrived();
      await held.until;
    }
    const fault = this.faults.shift();
    if (fault?.kind === "refuse") {
      return Response.json(
        { errcode: fault.errcode, error: "refused", soft_logout: fault.softLogout === true },
        { status: fault.status },
      );
    }
    if (fault?.kind === "error") return Response.json({ errcode: "M_UNKNOWN" }, { status: fault.status });
    if (!this.#refresh.has(refreshToken)) return unknownToken(false);
    // Its first use revokes its parent; an earlier answer to it (unused) is revoked.
    const parent = this.#refresh.get(refreshToken);
    if (parent !== undefined) this.#refresh.delete(parent);
    this.#refresh.set(refreshToken, undefined);
    for (const [t, p] of this.#refresh) if (p === refreshToken) this.#refresh.delete(t);
    for (const [t, r] of this.#access) if (r.parent === refreshToken) this.#access.delete(t);
    const tokens = this.#issue(true, refreshToken);
    if (fault?.kind === "lost") throw new TypeError("fetch failed");
    return this.#answer(tokens, "/refresh");
  }

  #answer(json: Record<string, unknown>, path: "/login" | "/register" | "/refresh"): Response {
    const text = JSON.stringify(json);
    const headers = { "content-type": "application/json" };
    return new Response(this.mangle === undefined ? text : this.mangle(text, path), { headers });
  }

  #issue(refresh: boolean, parent?: string): Record<string, unknown> {
    const access = `at_${++this.#counter}_secret`;
    this.issued.push(access);
    if (!refresh) {
      this.#access.set(access, { expiresAt: undefined, parent: undefined });
      return { access_token: access };
    }
    const refreshToken = `rt_${++this.#counter}_secret`;
    this.issued.push(refreshToken);
    this.#access.set(access, { expiresAt: this.now + this.lifetimeMs, parent });
    this.#refresh.set(refreshToken, parent);
    return { access_token: access, refresh_token: refreshToken, expires_in_ms: this.lifetimeMs };
  }
}

function unknownToken(softLogout: boolean): Response {
  return Response.json(
    { errcode: "M_UNKNOWN_TOKEN", error: "Unknown or expired token", soft_logout: softLogout },
    { status: 401 },
  );
}
