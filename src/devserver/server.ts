// The HTTP front: CORS, body limits, access tokens, rate limiting, errors in the spec's shape.
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseRegistration, type Registration, RegistrationError } from "../wire/appservice.ts";
import { AppservicePusher, type PushRetryPolicy } from "./appservice/pusher.ts";
import { appserviceAuth } from "./appservice/registry.ts";
import { MatrixError, UiaChallenge } from "./errors.ts";
import { CanonicalJsonError } from "./event-format.ts";
import { Homeserver, type RateLimitConfig } from "./homeserver.ts";
import { MAX_JSON_BODY_BYTES, MAX_UNAUTHENTICATED_BODY_BYTES, MAX_UPLOAD_BYTES } from "./route-context.ts";
import type { RouteRequest, RouteResponse } from "./router.ts";
import { buildRouter } from "./routes/index.ts";
import { Uia } from "./uia.ts";

/** How long an idle client connection stays open (HTTP keep-alive). */
export const KEEP_ALIVE_TIMEOUT_MS = 60_000;

export interface DevServerOptions {
  /** TCP port; 0 picks a free one. Default 8008. */
  port?: number;
  /** Interface to bind; loopback by default. */
  host?: string;
  /** SQLite file; ignored when `memory` is true. Default `./devserver.sqlite`. */
  dbPath?: string;
  /** Keep everything in memory (lost on close). */
  memory?: boolean;
  /** The server name in user IDs, room IDs and aliases. Default `localhost`. */
  serverName?: string;
  /** Optional per-token request rate limit; off by default. */
  rateLimit?: RateLimitConfig;
  /** Lifetime of access tokens issued with a refresh token (clients opt in). Default 5 minutes. */
  accessTokenLifetimeMs?: number;
  /**
   * The time access tokens are issued and expire by (ms since the epoch); default `Date.now`.
   * Tests step it to expire tokens without waiting.
   */
  now?: () => number;
  /**
   * Application services: paths of registration files (YAML or JSON), read at start, or parsed
   * registrations. See the README's appservice section.
   */
  appservices?: readonly (string | Registration)[];
  /** Backoff of transaction retries to appservices (default 500 ms doubling up to 60 s). */
  appserviceRetry?: PushRetryPolicy;
}

export interface DevServer {
  baseUrl: string;
  serverName: string;
  close(): Promise<void>;
}

/** Most rate-limit buckets kept (one per access token or address seen); idle ones go first. */
export const MAX_RATE_LIMIT_BUCKETS = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly cfg: RateLimitConfig) {}
  get size(): number {
    return this.buckets.size;
  }
  /** Returns 0 when allowed, else how many ms until a request would be. */
  take(key: string, now = Date.now()): number {
    const cap = this.cfg.burst + 1;
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= MAX_RATE_LIMIT_BUCKETS) this.evict(now, cap);
      b = { tokens: cap, at: now };
    }
    b.tokens = Math.min(cap, b.tokens + ((now - b.at) / 1000) * this.cfg.perSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / this.cfg.perSecond) * 1000);
  }
  /**
   * Makes room: drops the buckets that have refilled (forgetting them changes nothing), else the
   * oldest half (an evicted key starts full again: a burst, not an unbounded map).
   */
  private evict(now: number, cap: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.cfg.perSecond >= cap) this.buckets.delete(k);
    }
    if (this.buckets.size < MAX_RATE_LIMIT_BUCKETS) return;
    let drop = Math.ceil(this.buckets.size / 2);
    for (const k of this.buckets.keys()) {
      if (drop-- <= 0) break;
      this.buckets.delete(k);
    }
  }
}

const CORS_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
  "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization, Date",
  "Access-Control-Expose-Headers": "ETag, Content-Disposition",
};

function accessToken(req: IncomingMessage, query: URLSearchParams): string | undefined {
  const h = req.headers.authorization;
  if (h !== undefined) {
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (!m) throw new MatrixError(401, "M_MISSING_TOKEN", "Invalid Authorization header");
    return m[1];
  }
  return query.get("access_token") ?? undefined;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > limit) {
      reject(new MatrixError(413, "M_TOO_LARGE", "Request body too large"));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new MatrixError(413, "M_TOO_LARGE", "Request body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, r: RouteResponse): void {
  const headers: Record<string, string> = { ...CORS_HEADERS, ...(r.headers ?? {}) };
  if ("json" in r) {
    const body = Buffer.from(JSON.stringify(r.json));
    headers["Content-Type"] = "application/json";
    headers["Content-Length"] = String(body.length);
    res.writeHead(r.status ?? 200, headers);
    res.end(body);
  } else {
    headers["Content-Type"] = r.contentType;
    headers["Content-Length"] = String(r.bytes.length);
    res.writeHead(r.status ?? 200, headers);
    res.end(r.bytes);
  }
}

/** Reads a registration file; a bad one fails with its path in the message. */
function readRegistration(file: string): Registration {
  const text = readFileSync(file, "utf8");
  try {
    return parseRegistration(text);
  } catch (e) {
    if (e instanceof RegistrationError) throw new RegistrationError(e.code, `${file}: ${e.message}`);
    throw e;
  }
}

/** The media upload routes (direct, and the `PUT` of an asynchronous one). */
const UPLOAD_ROUTE = /^\/_matrix\/media\/(?:(?:v3|r0)\/upload|v3\/upload\/[^/]+\/[^/]+)$/;

/** How much of a request's body is read: uploads get more, requests without a token much less. */
function bodyLimit(method: string, path: string, authenticated: boolean): number {
  if (!authenticated) return MAX_UNAUTHENTICATED_BODY_BYTES;
  return (method === "POST" || method === "PUT") && UPLOAD_ROUTE.test(path)
    ? MAX_UPLOAD_BYTES
    : MAX_JSON_BODY_BYTES;
}

/** Registration names a user that does not exist yet: the one route an appservice may use for one. */
function isRegistration(method: string, path: string): boolean {
  return method === "POST" && /^\/_matrix\/client\/(v3|r0)\/register$/.test(path);
}

/** Starts a devserver; resolves once it listens. */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const serverName = options.serverName ?? "localhost";
  const dbPath = options.memory ? ":memory:" : (options.dbPath ?? "./devserver.sqlite");
  const appservices = (options.appservices ?? []).map((a) =>
    typeof a === "string" ? readRegistration(a) : a,
  );
  const hs = new Homeserver({
    serverName,
    dbPath,
    appservices,
    ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
    ...(options.accessTokenLifetimeMs !== undefined
      ? { accessTokenLifetimeMs: options.accessTokenLifetimeMs }
      : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  let baseUrl = "";
  const accountLookup = {
    userExists: (userId: string) => hs.accounts.getUser(userId) !== undefined,
    deviceExists: (userId: string, deviceId: string) => hs.accounts.getDevice(userId, deviceId) !== undefined,
  };
  const uia = new Uia(hs);
  const router = buildRouter({ hs, uia, baseUrl: () => baseUrl });
  const limiter = options.rateLimit ? new RateLimiter(options.rateLimit) : undefined;

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  // Node's 5 s default closes idle keep-alive sockets while clients still count them as open: a
  // client that sends on one as it closes gets ECONNRESET, and a POST is not retried. Seen under
  // load, where timers run late; Synapse keeps idle connections for a minute.
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 5_000;

  /** A request target no URL parser takes (`//[`) is the client's mistake, not the server's. */
  function requestUrl(target: string | undefined): URL {
    try {
      return new URL(target ?? "/", "http://devserver.invalid");
    } catch {
      throw new MatrixError(400, "M_UNRECOGNIZED", "Malformed request target");
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const abort = new AbortController();
    // Only a client that went away mid-request aborts (an abort allocates an exception).
    res.on("close", () => {
      if (!res.writableFinished) abort.abort();
    });
    try {
      if (req.method === "OPTIONS") {
        res.writeHead(204, CORS_HEADERS);
        res.end();
        return;
      }
      const url = requestUrl(req.url);
      const method = req.method === "HEAD" ? "GET" : (req.method ?? "GET");
      const match = router.match(method, url.pathname);
      const token = accessToken(req, url.searchParams);
      let auth: RouteRequest["auth"];
      const as = token !== undefined ? hs.appservices.byToken(token) : undefined;
      // An appservice's token counts on every route (its login and registration are "none" routes
      // for everyone else, who may carry a stale token there).
      if (token !== undefined && (match.auth !== "none" || as !== undefined)) {
        auth = as
          ? appserviceAuth(
              hs.appservices,
              as,
              token,
              url.searchParams,
              accountLookup,
              isRegistration(method, url.pathname),
            )
          : hs.authenticate(token);
      }
      if (match.auth === "required" && !auth) {
        throw new MatrixError(401, "M_MISSING_TOKEN", "Missing access token");
      }
      const ip = req.socket.remoteAddress ?? "";
      if (limiter && as?.reg.rate_limited !== false) {
        const wait = limiter.take(auth ? `t:${auth.userId}/${auth.deviceId}` : `ip:${ip}`);
        if (wait > 0) {
          throw new MatrixError(429, "M_LIMIT_EXCEEDED", "Too many requests", { retry_after_ms: wait });
        }
      }
      const rawBody = await readBody(req, bodyLimit(method, url.pathname, auth !== undefined));
      const result = await match.handler({
        method,
        path: url.pathname,
        params: match.params,
        query: url.searchParams,
        headers: req.headers,
        rawBody,
        ip,
        auth,
        signal: abort.signal,
      });
      if (!res.writableEnded && !res.destroyed) send(res, result);
    } catch (e) {
      if (res.headersSent || res.destroyed) return;
      if (e instanceof MatrixError) {
        const headers: Record<string, string> = {};
        const retry = e.extra.retry_after_ms;
        if (typeof retry === "number") headers["Retry-After"] = String(Math.ceil(retry / 1000));
        send(res, { status: e.status, json: e.toBody(), headers });
      } else if (e instanceof CanonicalJsonError) {
        // Floats, lone surrogates and the like: Matrix JSON cannot carry them (events are hashed and
        // keys signed over canonical JSON), so the request is malformed.
        send(res, { status: 400, json: { errcode: "M_BAD_JSON", error: `Invalid JSON value: ${e.code}` } });
      } else if (e instanceof UiaChallenge) {
        send(res, { status: 401, json: e.body });
      } else {
        // Unexpected: say so without leaking internals (no tokens or bodies in the message).
        const name = e instanceof Error ? e.name : "error";
        process.emitWarning(
          `devserver: internal error (${name}) on ${req.method} ${(req.url ?? "").split("?")[0]}`,
        );
        send(res, { status: 500, json: { errcode: "M_UNKNOWN", error: "Internal server error" } });
      }
    }
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 8008, options.host ?? "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    // Port taken or not allowed: release the database before reporting it.
    hs.close();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  baseUrl = `http://${host}:${addr.port}`;
  const pushers = hs.appservices.list.flatMap((as) =>
    as.reg.url === null
      ? []
      : [new AppservicePusher(hs, hs.appservices, as, as.reg.url, options.appserviceRetry)],
  );
  for (const p of pushers) p.start();

  let closing: Promise<void> | undefined;
  return {
    baseUrl,
    serverName,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const pushersClosed = Promise.all(pushers.map((p) => p.close()));
        hs.notifier.notifyAll();
        server.close(() => {
          void pushersClosed.then(() => {
            hs.close();
            resolve();
          });
        });
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
