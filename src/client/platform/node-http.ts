// The client's JSON requests on Node: `node:http` / `node:https` with keep-alive agents shared by
// the process's clients (as `fetch` shares undici's global pool). Same contract as the `fetch`
// transport (src/client/transport.ts): one timer over the whole exchange (or to the response head,
// then from chunk to chunk of the body: `timeoutPerChunk`), the caller's abort
// signal, typed errors, a bounded body, gzip/brotli bodies decoded (and bounded after decoding),
// redirects followed as `fetch` follows them. It exists because `fetch`'s request objects and web
// streams were the largest CPU cost of a bot's command round trip (bench/README.md, bots section).
import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { createBrotliDecompress, createGunzip } from "node:zlib";
import { NetworkError } from "../errors.ts";
import {
  bodyTooLarge,
  type HttpTransport,
  networkMessage,
  type TransportRequest,
  type TransportResponse,
} from "../transport.ts";

/** Redirects followed before giving up (what `fetch` allows). */
export const MAX_REDIRECTS = 20;
/** Idle keep-alive sockets kept per origin (busy ones are not limited, as with `fetch`). */
export const MAX_FREE_SOCKETS_PER_ORIGIN = 16;
/**
 * An idle keep-alive socket is closed by the client after this long, before the server closes it
 * (Node's servers: 5 s): a request sent on a socket the server is closing fails with ECONNRESET,
 * and a POST cannot be sent again. Without an agent timeout Node ignores the server's
 * `Keep-Alive: timeout` hint and keeps idle sockets until the server ends them. undici's is 4 s too.
 */
export const KEEP_ALIVE_IDLE_MS = 4_000;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Methods a transport may send again when a reused keep-alive socket turned out closed. */
const IDEMPOTENT = new Set(["GET", "PUT", "DELETE"]);
/** Socket errors of a keep-alive connection the server closed while it sat idle. */
const STALE_SOCKET_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

export interface NodeHttpTransportOptions {
  /** Agents to use instead of the shared keep-alive ones (tests, custom TLS). */
  readonly httpAgent?: HttpAgent;
  readonly httpsAgent?: HttpsAgent;
}

// `timeout` is the sockets' inactivity timeout: the agent destroys an idle socket when it fires,
// and a busy one (a long-polling /sync) is left alone (the exchange has its own timer).
const AGENT_OPTIONS = {
  keepAlive: true,
  maxFreeSockets: MAX_FREE_SOCKETS_PER_ORIGIN,
  timeout: KEEP_ALIVE_IDLE_MS,
} as const;
let shared: { http: HttpAgent; https: HttpsAgent } | undefined;
function sharedAgents(): { http: HttpAgent; https: HttpsAgent } {
  shared ??= {
    http: new HttpAgent(AGENT_OPTIONS),
    https: new HttpsAgent(AGENT_OPTIONS),
  };
  return shared;
}

/** Origins whose parsed form is kept (a client talks to one homeserver; redirects may add a few). */
export const MAX_PARSED_ORIGINS = 16;
const origins = new Map<string, { https: boolean; hostname: string; port: number }>();

/**
 * `url`'s origin parts (parsed once per origin: `http.request(url)` parses every URL again) and
 * its path with the query, as sent.
 */
function splitUrl(url: string): { https: boolean; hostname: string; port: number; path: string } {
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  const origin = slash < 0 ? url : url.slice(0, slash);
  const path = slash < 0 ? "/" : url.slice(slash);
  let parts = origins.get(origin);
  if (parts === undefined) {
    const u = new URL(origin);
    const https = u.protocol === "https:";
    // IPv6 literals come bracketed in URLs, bare in `hostname` for `node:http`.
    const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
    // A number: `node:http` leaves the default port out of the Host header only when it is one.
    parts = { https, hostname, port: u.port === "" ? (https ? 443 : 80) : Number(u.port) };
    if (origins.size >= MAX_PARSED_ORIGINS) origins.clear();
    origins.set(origin, parts);
  }
  return { ...parts, path };
}

/** The `node:http` transport (see the file comment). */
export function nodeHttpTransport(opts: NodeHttpTransportOptions = {}): HttpTransport {
  let agents: { http: HttpAgent; https: HttpsAgent } | undefined;
  return {
    send: (req) => {
      agents ??= {
        http: opts.httpAgent ?? sharedAgents().http,
        https: opts.httpsAgent ?? sharedAgents().https,
      };
      return new Exchange(req, agents).start();
    },
  };
}

/** One request with its redirects and retries, under one timer and the caller's signal. */
class Exchange {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failed: NetworkError | undefined;
  #current: ClientRequest | undefined;
  #onFail: ((err: NetworkError) => void) | undefined;
  #done = false;

  constructor(
    private readonly req: TransportRequest,
    private readonly agents: { http: HttpAgent; https: HttpsAgent },
  ) {}

  start(): Promise<TransportResponse> {
    const { signal, timeoutMs } = this.req;
    if (signal?.aborted) return Promise.reject(this.#network("ABORTED"));
    this.#timer = setTimeout(() => this.#fail(this.#network("TIMEOUT")), timeoutMs);
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    return this.#attempt(this.req.method, this.req.url, this.req.headers, this.req.body, 0).catch(
      (err: unknown) => {
        this.#finish();
        throw err;
      },
    );
  }

  readonly #onAbort = () => this.#fail(this.#network("ABORTED"));

  #network(code: NetworkError["code"], cause?: unknown): NetworkError {
    return new NetworkError(code, networkMessage(this.req.endpoint, code), { cause });
  }

  /** Ends the exchange with `err` (a timeout or an abort) wherever it is. */
  #fail(err: NetworkError): void {
    if (this.#done || this.#failed !== undefined) return;
    this.#failed = err;
    this.#current?.destroy(err);
    this.#onFail?.(err);
  }

  /** Starts the exchange's timer over (a body chunk came in, with `timeoutPerChunk`). */
  #restartTimer(): void {
    if (this.#done || this.#failed !== undefined) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#fail(this.#network("TIMEOUT")), this.req.timeoutMs);
  }

  /** Stops the timer and the abort listener (the exchange is over). */
  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.req.signal?.removeEventListener("abort", this.#onAbort);
  }

  /** Sends one request, follows its redirects, and resolves with the final response. */
  async #attempt(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: string | undefined,
    redirects: number,
  ): Promise<TransportResponse> {
    const res = await this.#request(method, url, headers, body, false);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (!REDIRECT_STATUSES.has(status) || location === undefined) return this.#response(res);
    res.resume();
    if (redirects >= MAX_REDIRECTS) throw this.#network("NETWORK", new Error("too many redirects"));
    let next: URL;
    try {
      next = new URL(location, url);
    } catch (err) {
      throw this.#network("NETWORK", err);
    }
    if (next.protocol !== "http:" && next.protocol !== "https:")
      throw this.#network("NETWORK", new Error("redirect to a non-http URL"));
    const nextHeaders = { ...headers };
    // As `fetch` does: the token does not follow to another origin.
    if (next.origin !== new URL(url).origin) delete nextHeaders.Authorization;
    // 303, and 301/302 after a POST, continue as a GET without the body (as `fetch` does).
    if (status === 303 ? method !== "GET" : (status === 301 || status === 302) && method === "POST") {
      delete nextHeaders["Content-Type"];
      return this.#attempt("GET", next.toString(), nextHeaders, undefined, redirects + 1);
    }
    return this.#attempt(method, next.toString(), nextHeaders, body, redirects + 1);
  }

  /** One HTTP request; resolves once its response head is in. */
  #request(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: string | undefined,
    retried: boolean,
  ): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      if (this.#failed !== undefined) return reject(this.#failed);
      const outgoing: Record<string, string> = { ...headers, "Accept-Encoding": "gzip, br" };
      if (body !== undefined) outgoing["Content-Length"] = String(Buffer.byteLength(body));
      let req: ClientRequest;
      try {
        const { https, hostname, port, path } = splitUrl(url);
        req = (https ? httpsRequest : httpRequest)({
          method,
          hostname,
          port,
          path,
          headers: outgoing,
          agent: https ? this.agents.https : this.agents.http,
        });
      } catch (err) {
        return reject(this.#network("NETWORK", err));
      }
      this.#current = req;
      this.#onFail = reject;
      req.once("response", (res) => {
        this.#onFail = undefined;
        resolve(res);
      });
      req.once("error", (err: NodeJS.ErrnoException) => {
        if (this.#failed !== undefined) return reject(this.#failed);
        this.#onFail = undefined;
        // A keep-alive socket the server closed while it sat idle: once more, on a fresh one.
        if (
          req.reusedSocket &&
          !retried &&
          IDEMPOTENT.has(method) &&
          STALE_SOCKET_CODES.has(err.code ?? "")
        ) {
          this.#request(method, url, headers, body, true).then(resolve, reject);
          return;
        }
        reject(this.#network("NETWORK", err));
      });
      req.end(body);
    });
  }

  #response(res: IncomingMessage): TransportResponse {
    const status = res.statusCode ?? 0;
    let read: Promise<string> | undefined;
    return {
      status,
      header: (name) => {
        const v = res.headers[name];
        return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
      },
      text: (limit) => {
        read ??= this.#read(res, status, limit).finally(() => this.#finish());
        return read;
      },
    };
  }

  #read(res: IncomingMessage, status: number, limit: number): Promise<string> {
    const endpoint = this.req.endpoint;
    return new Promise<string>((resolve, reject) => {
      if (this.#failed !== undefined) {
        res.destroy();
        return reject(this.#failed);
      }
      const declared = Number(res.headers["content-length"]);
      const encoding = (res.headers["content-encoding"] ?? "identity").trim().toLowerCase();
      if (encoding === "identity" && declared > limit) {
        this.#current?.destroy();
        return reject(bodyTooLarge(endpoint, status, limit));
      }
      let stream: NodeJS.ReadableStream & { destroy(err?: Error): void } = res;
      if (encoding === "gzip" || encoding === "x-gzip") stream = res.pipe(createGunzip());
      else if (encoding === "br") stream = res.pipe(createBrotliDecompress());
      else if (encoding !== "identity")
        return reject(this.#network("NETWORK", new Error(`unsupported content-encoding ${encoding}`)));
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const settle = (err: Error | undefined, text?: string) => {
        if (settled) return;
        settled = true;
        this.#onFail = undefined;
        if (err !== undefined) reject(err);
        else resolve(text ?? "");
      };
      this.#onFail = (err) => settle(err);
      const failRead = (cause: unknown) =>
        settle(this.#failed ?? new NetworkError("NETWORK", `${endpoint}: body read failed`, { cause }));
      // Timed from chunk to chunk (`timeoutPerChunk`): the timer starts over with each one that
      // comes in (as sent: before decoding).
      if (this.req.timeoutPerChunk === true) res.on("data", () => this.#restartTimer());
      stream.on("data", (chunk: Buffer) => {
        size += chunk.byteLength;
        if (size > limit) {
          settle(bodyTooLarge(endpoint, status, limit));
          this.#current?.destroy();
          if (stream !== res) stream.destroy();
          return;
        }
        chunks.push(chunk);
      });
      stream.once("end", () => {
        let text = (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)).toString(
          "utf8",
        );
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        settle(undefined, text);
      });
      stream.once("error", failRead);
      // A connection lost mid-body (a decoder fed by it would never end).
      res.once("close", () => {
        if (!res.complete) failRead(new Error("connection closed before the body ended"));
      });
      if (stream !== res) res.once("error", failRead);
    });
  }
}
