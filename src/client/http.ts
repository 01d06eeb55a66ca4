// The HTTP layer: one place that builds URLs, adds the access token (Authorization header only),
// maps failures to typed errors and validates every JSON body against a wire schema.

import { QUERY_DEVICE_ID, QUERY_DEVICE_ID_UNSTABLE } from "../wire/appservice-query.ts";
import type * as z from "../wire/zod.ts";
import { ClientError, MalformedResponseError, MatrixError, NetworkError } from "./errors.ts";
import { type Logger, silentLogger } from "./logger.ts";
import {
  type FetchLike,
  type FetchTransport,
  type FetchTransportRequest,
  fetchTransport,
  type HttpTransport,
  networkMessage,
  type TransportResponse,
} from "./transport.ts";

export type { FetchLike, HttpTransport } from "./transport.ts";

/** Largest JSON body the client reads; a server cannot make it buffer more. */
export const MAX_JSON_RESPONSE_BYTES = 64 * 1024 * 1024;
/**
 * Largest `/sync` body: a first sync of a big account is far larger than any other response (about
 * 34 MB for 1 000 rooms of 50 events and 20 members, 170 MB for 5 000: bench/sync), and refusing it
 * locks the account out. Still bounded, under V8's ~512 MiB string limit with room to parse.
 */
export const MAX_SYNC_RESPONSE_BYTES = 256 * 1024 * 1024;
/**
 * Largest answer of a whole key backup (`GET /room_keys/keys`, which the spec does not paginate):
 * ~850 bytes a session, so about 80 000 sessions fit in `MAX_JSON_RESPONSE_BYTES` and 300 000 in
 * this. The same bound as `/sync`'s (one string under V8's ~512 MiB limit, with room to parse); a
 * bigger backup comes down room by room, each room's answer under this bound too.
 */
export const MAX_BACKUP_RESPONSE_BYTES = 256 * 1024 * 1024;
/** Default per-request timeout (sync adds its long-poll timeout on top). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** Largest error body read for its `errcode` (a bigger one counts as having none). */
export const MAX_ERROR_BODY_BYTES = 1024 * 1024;

/** A request path: `encoded` goes on the wire, `template` (no IDs) goes into logs and errors. */
export interface RequestPath {
  readonly encoded: string;
  readonly template: string;
}

/**
 * Tagged template for paths: every interpolated value is percent-encoded as one segment, so a room
 * ID or event type can never add segments or a query string (`.` and `..`, dot segments whatever
 * their encoding, are refused with INVALID_ARGUMENT).
 * `path\`/_matrix/client/v3/rooms/${roomId}/send/${type}/${txnId}\``
 */
export function path(strings: TemplateStringsArray, ...values: string[]): RequestPath {
  let encoded = strings[0] ?? "";
  let template = strings[0] ?? "";
  values.forEach((v, i) => {
    // A lone surrogate has no UTF-8 form: encodeURIComponent would throw an untyped URIError.
    if (!v.isWellFormed()) {
      throw new ClientError("INVALID_ARGUMENT", `not well-formed Unicode in a path of ${template}…`);
    }
    // URL parsing takes `.` and `..` (also percent-encoded) as dot segments: another endpoint.
    if (v === "." || v === "..") {
      throw new ClientError("INVALID_ARGUMENT", `"${v}" as a part of a path of ${template}…`);
    }
    encoded += encodeURIComponent(v) + (strings[i + 1] ?? "");
    template += `{}${strings[i + 1] ?? ""}`;
  });
  return { encoded, template };
}

export type QueryValue = string | number | boolean | undefined;

export interface RequestOptions<S extends z.ZodMiniType> {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: RequestPath;
  query?: Record<string, QueryValue>;
  /** JSON body. */
  body?: unknown;
  /** Raw body (media upload); `contentType` required with it. */
  rawBody?: { data: BodyInit; contentType: string; length?: number };
  /**
   * Send the access token (default true); `{ token }`: that token instead, not renewed and with no
   * identity assertion (a login's answer the client refuses, whose device it logs out).
   */
  auth?: boolean | { readonly token: string };
  schema: S;
  /**
   * A hand-written check of the body's common shape giving the schema's result without it, or
   * undefined to leave the body to the schema (e.g. `parseCommonSyncResponse`).
   */
  fastParse?: (json: unknown) => z.output<S> | undefined;
  signal?: AbortSignal;
  timeoutMs?: number;
  /**
   * Times the body from chunk to chunk (each one starts `timeoutMs` again) instead of to its last
   * byte: for a body that may be big (`/sync`), on a link that may be slow.
   */
  timeoutPerChunk?: boolean;
  /** Bound on the JSON body read (default `MAX_JSON_RESPONSE_BYTES`). */
  maxResponseBytes?: number;
}

export interface HttpClientOptions {
  baseUrl: string;
  /** Every request goes through this `fetch` (also the JSON ones, whatever `transport` says). */
  fetch?: FetchLike;
  /**
   * The JSON requests' transport when no `fetch` is given (the platform's: `node:http` on Node);
   * default: the global `fetch`. Media (`requestRaw`) always uses `fetch`.
   */
  transport?: HttpTransport | undefined;
  logger?: Logger;
  /** Read at each request, so a login or restore takes effect immediately. */
  accessToken?: () => string | undefined;
  /**
   * Identity assertion of an application service (the access token is its `as_token`): the user
   * and device every authenticated request acts as, sent as `user_id` and `device_id` (with
   * MSC3202's `org.matrix.msc3202.device_id`, which servers before MSC4326 read).
   */
  assertedIdentity?: () => { userId: string; deviceId: string } | undefined;
  /**
   * Aborting it ends every request in flight with `NetworkError` `ABORTED` and refuses later ones
   * alike (a media body being read stays under the download's own signal, when it has one).
   */
  signal?: AbortSignal;
  /** Renews the access token (refresh tokens) for authenticated requests. */
  renewal?: TokenRenewal;
}

/** Renewing the access token around authenticated requests (`TokenRefresher`). */
export interface TokenRenewal {
  /**
   * Called before each authenticated request: undefined to send it now, or what to wait for first
   * (a renewal due or under way); rejecting fails the request with its error (the session is over).
   */
  fresh(): Promise<void> | undefined;
  /**
   * A request sent with `token` was answered 401 `M_UNKNOWN_TOKEN` (`error`): true to send it once
   * more, with the token current by then; false to fail it with `error`; rejecting fails it with
   * that error instead.
   */
  rejected(token: string, error: MatrixError): Promise<boolean>;
}

export class HttpClient {
  readonly baseUrl: string;
  /** Media (streamed responses and bodies) always goes through `fetch`. */
  private readonly fetchTransport: FetchTransport;
  private readonly transport: HttpTransport;
  private readonly logger: Logger;
  private readonly token: () => string | undefined;
  private readonly identity: () => { userId: string; deviceId: string } | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly renewal: TokenRenewal | undefined;
  /** The requests in flight under `signal`: one listener on it aborts them all (none per request). */
  private readonly underSignal = new Set<AbortController>();

  constructor(opts: HttpClientOptions) {
    this.baseUrl = normalizeBaseUrl(opts.baseUrl);
    this.fetchTransport = fetchTransport(opts.fetch ?? ((input, init) => globalThis.fetch(input, init)));
    this.transport = (!opts.fetch && opts.transport) || this.fetchTransport;
    this.logger = opts.logger ?? silentLogger;
    this.token = opts.accessToken ?? (() => undefined);
    this.identity = opts.assertedIdentity ?? (() => undefined);
    this.signal = opts.signal;
    this.renewal = opts.renewal;
    opts.signal?.addEventListener(
      "abort",
      () => {
        for (const ctrl of this.underSignal) ctrl.abort();
      },
      { once: true },
    );
  }

  /** Sends a request and returns the validated JSON body. */
  async request<S extends z.ZodMiniType>(opts: RequestOptions<S>): Promise<z.output<S>> {
    const { signal, release } = this.withClientSignal(opts.signal);
    let res: TransportResponse;
    let text: string;
    try {
      // Uploads (a `Blob` or stream body) go through `fetch`.
      res = await this.renewing(
        signal === undefined ? opts : { ...opts, signal },
        "application/json",
        opts.rawBody ? this.fetchTransport : this.transport,
      );
      text = await res.text(opts.maxResponseBytes ?? MAX_JSON_RESPONSE_BYTES);
    } finally {
      release();
    }
    const endpoint = `${opts.method} ${opts.path.template}`;
    let json: unknown;
    try {
      json = text.length === 0 ? {} : JSON.parse(text);
    } catch {
      throw new MalformedResponseError(endpoint, res.status, ["body is not JSON"]);
    }
    const fast = opts.fastParse?.(json);
    if (fast !== undefined) return fast;
    const parsed = opts.schema.safeParse(json);
    if (!parsed.success) {
      const issues = schemaIssues(parsed.error);
      this.logger.warn({ endpoint, status: res.status, issues: issues.slice(0, 5) }, "malformed response");
      throw new MalformedResponseError(endpoint, res.status, issues);
    }
    return parsed.data;
  }

  /** Whether the client's `signal` was aborted: every request is refused from now on. */
  get aborted(): boolean {
    return this.signal?.aborted === true;
  }

  /**
   * Sends a request and returns the raw successful response (media downloads); the timeout runs
   * until its body is read or cancelled.
   */
  async requestRaw(opts: Omit<RequestOptions<z.ZodMiniType>, "schema">): Promise<Response> {
    // The body outlives this call: a download's own signal, when given, is the one that ends it;
    // once the client's is aborted, no request goes out, with its own signal or not.
    const signal = this.signal?.aborted === true ? this.signal : (opts.signal ?? this.signal);
    return (
      await this.renewing(signal === undefined ? opts : { ...opts, signal }, "*/*", this.fetchTransport)
    ).response();
  }

  /**
   * `exchange`, with the access token renewed when due, and an authenticated request the server
   * answered 401 `M_UNKNOWN_TOKEN` sent once more when `renewal` got a new token (not one whose
   * body is a stream, which is read once).
   */
  private async renewing<R extends TransportResponse>(
    opts: Omit<RequestOptions<z.ZodMiniType>, "schema">,
    accept: string,
    transport: { send(request: FetchTransportRequest): Promise<R> },
  ): Promise<R> {
    const renewal = opts.auth === false || typeof opts.auth === "object" ? undefined : this.renewal;
    if (renewal === undefined) return this.exchange(opts, accept, transport);
    const endpoint = `${opts.method} ${opts.path.template}`;
    const due = renewal.fresh();
    if (due !== undefined) await untilAborted(due, opts.signal, endpoint);
    const token = this.token();
    try {
      return await this.exchange(opts, accept, transport);
    } catch (err) {
      if (
        token === undefined ||
        !(err instanceof MatrixError && err.httpStatus === 401 && err.errcode === "M_UNKNOWN_TOKEN") ||
        (opts.rawBody !== undefined && !replayable(opts.rawBody.data))
      ) {
        throw err;
      }
      if (!(await untilAborted(renewal.rejected(token, err), opts.signal, endpoint))) throw err;
      return this.exchange(opts, accept, transport);
    }
  }

  /**
   * A signal that aborts when `request`'s or the client's does; `release` (once the request is
   * over) drops what it put on them.
   */
  private withClientSignal(request: AbortSignal | undefined): {
    signal: AbortSignal | undefined;
    release(): void;
  } {
    const client = this.signal;
    if (client === undefined) return { signal: request, release() {} };
    const ctrl = new AbortController();
    const abort = () => ctrl.abort();
    if (client.aborted || request?.aborted === true) ctrl.abort();
    this.underSignal.add(ctrl);
    request?.addEventListener("abort", abort, { once: true });
    return {
      signal: ctrl.signal,
      release: () => {
        this.underSignal.delete(ctrl);
        request?.removeEventListener("abort", abort);
      },
    };
  }

  /** Sends the request; a successful answer's body is left to read, an error one becomes a `MatrixError`. */
  private async exchange<R extends TransportResponse>(
    opts: Omit<RequestOptions<z.ZodMiniType>, "schema">,
    accept: string,
    transport: { send(request: FetchTransportRequest): Promise<R> },
  ): Promise<R> {
    const endpoint = `${opts.method} ${opts.path.template}`;
    const headers: Record<string, string> = { Accept: accept };
    let query = opts.query;
    if (typeof opts.auth === "object") headers.Authorization = `Bearer ${opts.auth.token}`;
    else if (opts.auth !== false) {
      const token = this.token();
      if (token !== undefined) {
        headers.Authorization = `Bearer ${token}`;
        const id = this.identity();
        if (id !== undefined)
          query = {
            ...query,
            user_id: id.userId,
            [QUERY_DEVICE_ID]: id.deviceId,
            [QUERY_DEVICE_ID_UNSTABLE]: id.deviceId,
          };
      }
    }
    let body: BodyInit | undefined;
    if (opts.rawBody) {
      headers["Content-Type"] = opts.rawBody.contentType;
      if (opts.rawBody.length !== undefined) headers["Content-Length"] = String(opts.rawBody.length);
      body = opts.rawBody.data;
    } else if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    if (opts.signal?.aborted) throw new NetworkError("ABORTED", networkMessage(endpoint, "ABORTED"));
    const started = Date.now();
    let res: R;
    try {
      res = await transport.send({
        method: opts.method,
        url: this.url(opts.path, query),
        headers,
        body,
        signal: opts.signal,
        timeoutMs: opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        ...(opts.timeoutPerChunk === true ? { timeoutPerChunk: true } : {}),
        endpoint,
      });
    } catch (err) {
      this.logger.debug({ endpoint, code: (err as NetworkError).code }, "request failed");
      throw err;
    }
    this.logger.debug({ endpoint, status: res.status, ms: Date.now() - started }, "response");
    if (res.status >= 200 && res.status < 300) return res;
    const text = await res.text(MAX_ERROR_BODY_BYTES).catch(() => "");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {}
    throw new MatrixError(
      res.status,
      typeof json === "object" && json !== null && !Array.isArray(json)
        ? (json as Record<string, unknown>)
        : undefined,
      parseRetryAfter(res.header("retry-after")),
    );
  }

  private url(p: RequestPath, query?: Record<string, QueryValue>): string {
    let url = this.baseUrl + p.encoded;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
      const qs = params.toString();
      if (qs.length > 0) url += `?${qs}`;
    }
    return url;
  }
}

/** `https://host/` → `https://host`; refuses non-http(s) URLs. */
export function normalizeBaseUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol !== "https:" && u.protocol !== "http:")
    throw new TypeError("homeserver URL must be http(s)");
  return u.toString().replace(/\/+$/, "");
}

/**
 * `promise`, or `NetworkError` `ABORTED` as soon as `signal` aborts (a renewal other requests share
 * goes on without this one).
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined, endpoint: string): Promise<T> {
  if (signal === undefined) return promise;
  const aborted = () => new NetworkError("ABORTED", networkMessage(endpoint, "ABORTED"));
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(aborted());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** A body `fetch` can send again: not a stream, which is read once. */
function replayable(body: BodyInit): boolean {
  return (
    typeof body === "string" ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    (typeof Blob !== "undefined" && body instanceof Blob) ||
    body instanceof URLSearchParams ||
    (typeof FormData !== "undefined" && body instanceof FormData)
  );
}

function parseRetryAfter(h: string | null): number | undefined {
  if (h === null || !/^\d{1,7}$/.test(h.trim())) return undefined;
  return Number(h.trim()) * 1000;
}

/** Where a body failed its schema, as `MalformedResponseError.issues` says it (paths, never values). */
export function schemaIssues(error: {
  readonly issues: readonly { path: PropertyKey[]; message: string }[];
}): string[] {
  return error.issues.map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`);
}
