// The HTTP layer: one place that builds URLs, adds the access token (Authorization header only),
// maps failures to typed errors and validates every JSON body against a wire schema.

import { QUERY_DEVICE_ID, QUERY_DEVICE_ID_UNSTABLE } from "../wire/appservice-query.ts";
import type * as z from "../wire/zod.ts";
import { MalformedResponseError, MatrixError, NetworkError } from "./errors.ts";
import { type Logger, silentLogger } from "./logger.ts";

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Largest JSON body the client reads; a server cannot make it buffer more. */
export const MAX_JSON_RESPONSE_BYTES = 64 * 1024 * 1024;
/**
 * Largest `/sync` body: a first sync of a big account is far larger than any other response (about
 * 34 MB for 1 000 rooms of 50 events and 20 members, 170 MB for 5 000: bench/sync), and refusing it
 * locks the account out. Still bounded, under V8's ~512 MiB string limit with room to parse.
 */
export const MAX_SYNC_RESPONSE_BYTES = 256 * 1024 * 1024;
/** Default per-request timeout (sync adds its long-poll timeout on top). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

/** A request path: `encoded` goes on the wire, `template` (no IDs) goes into logs and errors. */
export interface RequestPath {
  readonly encoded: string;
  readonly template: string;
}

/**
 * Tagged template for paths: every interpolated value is percent-encoded as one segment, so a room
 * ID or event type can never add segments or a query string.
 * `path\`/_matrix/client/v3/rooms/${roomId}/send/${type}/${txnId}\``
 */
export function path(strings: TemplateStringsArray, ...values: string[]): RequestPath {
  let encoded = strings[0] ?? "";
  let template = strings[0] ?? "";
  values.forEach((v, i) => {
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
  /** Send the access token (default true). */
  auth?: boolean;
  schema: S;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Bound on the JSON body read (default `MAX_JSON_RESPONSE_BYTES`). */
  maxResponseBytes?: number;
}

export interface HttpClientOptions {
  baseUrl: string;
  fetch?: FetchLike;
  logger?: Logger;
  /** Read at each request, so a login or restore takes effect immediately. */
  accessToken?: () => string | undefined;
  /**
   * Identity assertion of an application service (the access token is its `as_token`): the user
   * and device every authenticated request acts as, sent as `user_id` and `device_id` (with
   * MSC3202's `org.matrix.msc3202.device_id`, which servers before MSC4326 read).
   */
  assertedIdentity?: () => { userId: string; deviceId: string } | undefined;
}

export class HttpClient {
  readonly baseUrl: string;
  private readonly fetchImpl: FetchLike;
  private readonly logger: Logger;
  private readonly token: () => string | undefined;
  private readonly identity: () => { userId: string; deviceId: string } | undefined;

  constructor(opts: HttpClientOptions) {
    this.baseUrl = normalizeBaseUrl(opts.baseUrl);
    this.fetchImpl = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.logger = opts.logger ?? silentLogger;
    this.token = opts.accessToken ?? (() => undefined);
    this.identity = opts.assertedIdentity ?? (() => undefined);
  }

  /** Sends a request and returns the validated JSON body. */
  async request<S extends z.ZodMiniType>(opts: RequestOptions<S>): Promise<z.output<S>> {
    const res = await this.send(opts, "application/json");
    const endpoint = `${opts.method} ${opts.path.template}`;
    const text = await readLimited(res, opts.maxResponseBytes ?? MAX_JSON_RESPONSE_BYTES, endpoint);
    let json: unknown;
    try {
      json = text.length === 0 ? {} : JSON.parse(text);
    } catch {
      throw new MalformedResponseError(endpoint, res.status, ["body is not JSON"]);
    }
    const parsed = opts.schema.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
      this.logger.warn({ endpoint, status: res.status, issues: issues.slice(0, 5) }, "malformed response");
      throw new MalformedResponseError(endpoint, res.status, issues);
    }
    return parsed.data;
  }

  /** Sends a request and returns the raw successful response (media downloads). */
  async requestRaw(opts: Omit<RequestOptions<z.ZodMiniType>, "schema">): Promise<Response> {
    return this.send(opts, "*/*");
  }

  private async send(opts: Omit<RequestOptions<z.ZodMiniType>, "schema">, accept: string): Promise<Response> {
    const endpoint = `${opts.method} ${opts.path.template}`;
    const headers: Record<string, string> = { Accept: accept };
    let query = opts.query;
    if (opts.auth !== false) {
      const token = this.token();
      if (token !== undefined) {
        headers.Authorization = `Bearer ${token}`;
        const id = this.identity();
        if (id !== undefined) {
          query = {
            ...query,
            user_id: id.userId,
            [QUERY_DEVICE_ID]: id.deviceId,
            [QUERY_DEVICE_ID_UNSTABLE]: id.deviceId,
          };
        }
      }
    }
    const init: RequestInit & { duplex?: "half" } = { method: opts.method, headers };
    if (opts.rawBody) {
      headers["Content-Type"] = opts.rawBody.contentType;
      if (opts.rawBody.length !== undefined) headers["Content-Length"] = String(opts.rawBody.length);
      init.body = opts.rawBody.data;
      // Streaming request bodies need half-duplex in fetch implementations that support them.
      if (typeof ReadableStream !== "undefined" && opts.rawBody.data instanceof ReadableStream)
        init.duplex = "half";
    } else if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    if (opts.signal?.aborted) throw new NetworkError("ABORTED", `${endpoint}: aborted`);
    const { signal, cleanup, timedOut } = combineSignals(
      opts.signal,
      opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    );
    init.signal = signal;
    const started = Date.now();
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(opts.path, query), init);
    } catch (err) {
      cleanup();
      const code = timedOut() ? "TIMEOUT" : opts.signal?.aborted ? "ABORTED" : "NETWORK";
      this.logger.debug({ endpoint, code }, "request failed");
      throw new NetworkError(
        code,
        `${endpoint}: ${code === "NETWORK" ? "network error" : code.toLowerCase()}`,
        {
          cause: err,
        },
      );
    }
    // The timeout keeps running while the body streams in; it is cleared once the caller is done.
    res = withCleanup(res, cleanup);
    this.logger.debug({ endpoint, status: res.status, ms: Date.now() - started }, "response");
    if (res.ok) return res;
    const text = await readLimited(res, 1024 * 1024, endpoint).catch(() => "");
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const obj =
      typeof body === "object" && body !== null && !Array.isArray(body)
        ? (body as Record<string, unknown>)
        : undefined;
    throw new MatrixError(res.status, obj, parseRetryAfter(res));
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

function parseRetryAfter(res: Response): number | undefined {
  const h = res.headers.get("retry-after");
  if (h === null || !/^\d{1,7}$/.test(h.trim())) return undefined;
  return Number(h.trim()) * 1000;
}

function combineSignals(
  outer: AbortSignal | undefined,
  timeoutMs: number,
): { signal: AbortSignal; cleanup: () => void; timedOut: () => boolean } {
  const ctrl = new AbortController();
  let fired = false;
  const timer = setTimeout(() => {
    fired = true;
    ctrl.abort();
  }, timeoutMs);
  const onAbort = () => ctrl.abort();
  if (outer?.aborted) ctrl.abort();
  else outer?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: ctrl.signal,
    cleanup: () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
    timedOut: () => fired,
  };
}

/** Clears the request timer once the body is fully read or cancelled. */
function withCleanup(res: Response, cleanup: () => void): Response {
  if (res.body === null) {
    cleanup();
    return res;
  }
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          cleanup();
          ctrl.close();
        } else ctrl.enqueue(value);
      } catch (err) {
        cleanup();
        ctrl.error(err);
      }
    },
    cancel(reason) {
      cleanup();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

async function readLimited(res: Response, limit: number, endpoint: string): Promise<string> {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel();
        throw new MalformedResponseError(endpoint, res.status, [`body larger than ${limit} bytes`]);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof MalformedResponseError) throw err;
    throw new NetworkError("NETWORK", `${endpoint}: body read failed`, { cause: err });
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.byteLength;
  }
  return new TextDecoder().decode(all);
}
