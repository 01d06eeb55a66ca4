// The HTTP exchange under the client's JSON API calls, apart from what they mean: `HttpClient`
// builds the request and interprets the answer; a transport moves bytes. Two exist: `fetch` (every
// runtime, and whatever `fetch` an app passes) and `node:http` with a keep-alive agent
// (`platform/node-http.ts`, the default on Node, where `fetch`'s web streams cost more CPU than
// the rest of a bot's work per command).
import { MalformedResponseError, NetworkError, ResponseTooLargeError } from "./errors.ts";

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface TransportRequest {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  readonly url: string;
  readonly headers: Record<string, string>;
  /** The request body (JSON text), if any. */
  readonly body: string | undefined;
  /** The caller's signal: aborting it ends the exchange with `NetworkError` `ABORTED`. */
  readonly signal: AbortSignal | undefined;
  /**
   * Covers the whole exchange, from sending to the body's last byte (`NetworkError` `TIMEOUT`);
   * with `timeoutPerChunk`, from sending to the response head, then from each chunk of the body
   * to the next.
   */
  readonly timeoutMs: number;
  /**
   * The body is timed from chunk to chunk (each one starts `timeoutMs` again) instead of as a
   * whole: a big body over a slow link (a first `/sync`) is not cut off, one that stalls still is.
   */
  readonly timeoutPerChunk?: boolean;
  /** Method and path template (no IDs, no token), for errors. */
  readonly endpoint: string;
}

export interface TransportResponse {
  readonly status: number;
  /** A response header by lower-case name, or null. */
  header(name: string): string | null;
  /**
   * Reads the whole body as UTF-8 text (a leading byte order mark dropped), at most `limit`
   * bytes after content decoding, and ends the exchange. Rejects with `MalformedResponseError`
   * beyond the limit and `NetworkError` when the body cannot be read.
   */
  text(limit: number): Promise<string>;
}

export interface HttpTransport {
  /** Resolves once the status and headers are in; rejects with `NetworkError`. */
  send(request: TransportRequest): Promise<TransportResponse>;
}

/** The message of a `NetworkError` with `code` for `endpoint`. */
export function networkMessage(endpoint: string, code: NetworkError["code"]): string {
  return `${endpoint}: ${code === "NETWORK" ? "network error" : code.toLowerCase()}`;
}

export function bodyTooLarge(endpoint: string, status: number, limit: number): ResponseTooLargeError {
  return new ResponseTooLargeError(endpoint, status, limit);
}

/** A `fetch` request may carry any body (media uploads: a `Blob` or a stream). */
export type FetchTransportRequest = Omit<TransportRequest, "body"> & { readonly body: BodyInit | undefined };

export interface FetchTransport {
  send(request: FetchTransportRequest): Promise<
    TransportResponse & {
      /**
       * The response to stream from (media downloads). Once the headers are in, the timeout runs
       * from each chunk of the body to the next, not over the whole body: a big file over a slow
       * link is not cut off, a stalled one still is.
       */
      response(): Response;
    }
  >;
}

/** A transport over a `fetch` function (every runtime; media on Node). */
export function fetchTransport(fetchImpl: FetchLike): FetchTransport {
  return {
    async send(req) {
      const { signal, cleanup, restart, timedOut } = combineSignals(req.signal, req.timeoutMs);
      const init: RequestInit & { duplex?: "half" } = { method: req.method, headers: req.headers, signal };
      if (req.body !== undefined) {
        init.body = req.body;
        // Streaming request bodies need half-duplex in fetch implementations that support them
        // (every runtime the client supports has `ReadableStream`).
        if (req.body instanceof ReadableStream) {
          init.duplex = "half";
          // Timed from chunk to chunk, like a download's body: a big upload is not cut off.
          init.body = restartingPerChunk(req.body, restart);
        }
      }
      let res: Response;
      try {
        res = await fetchImpl(req.url, init);
      } catch (err) {
        cleanup();
        const code = timedOut() ? "TIMEOUT" : req.signal?.aborted ? "ABORTED" : "NETWORK";
        throw new NetworkError(code, networkMessage(req.endpoint, code), { cause: err });
      }
      // A body that fails part-way (connection reset, timeout, abort) errors the stream typed.
      const bodyError = (err: unknown) => {
        const code = timedOut() ? "TIMEOUT" : req.signal?.aborted ? "ABORTED" : "NETWORK";
        return new NetworkError(code, networkMessage(req.endpoint, code), { cause: err });
      };
      return {
        status: res.status,
        header: (name) => res.headers.get(name),
        text: (limit) =>
          readLimited(res, limit, req.endpoint, req.timeoutPerChunk ? restart : undefined, bodyError).finally(
            cleanup,
          ),
        response: () => withCleanup(res, cleanup, restart, bodyError),
      };
    },
  };
}

/**
 * An abort signal that fires on `outer` or after `timeoutMs`; `restart` starts the `timeoutMs` over,
 * `cleanup` stops both.
 */
function combineSignals(
  outer: AbortSignal | undefined,
  timeoutMs: number,
): { signal: AbortSignal; cleanup: () => void; restart: () => void; timedOut: () => boolean } {
  const ctrl = new AbortController();
  let fired = false;
  let stopped = false;
  const fire = () => {
    fired = true;
    ctrl.abort();
  };
  let timer = setTimeout(fire, timeoutMs);
  const onAbort = () => ctrl.abort();
  if (outer?.aborted) ctrl.abort();
  else outer?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: ctrl.signal,
    cleanup: () => {
      stopped = true;
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
    restart: () => {
      if (stopped || fired) return;
      clearTimeout(timer);
      timer = setTimeout(fire, timeoutMs);
    },
    timedOut: () => fired,
  };
}

/**
 * Reads a fetch `Response` body as text, refusing more than `limit` bytes; `onChunk` is called at
 * each chunk. A failed read is `bodyError`'s (`TIMEOUT` when the request's timer fired).
 */
async function readLimited(
  res: Response,
  limit: number,
  endpoint: string,
  onChunk: (() => void) | undefined,
  bodyError: (err: unknown) => NetworkError,
): Promise<string> {
  if (res.body === null) return "";
  let all: Uint8Array;
  try {
    all = await readStreamLimited(res.body, limit, () => bodyTooLarge(endpoint, res.status, limit), onChunk);
  } catch (err) {
    if (err instanceof MalformedResponseError) throw err;
    const failed = bodyError(err);
    if (failed.code !== "NETWORK") throw failed;
    throw new NetworkError("NETWORK", `${endpoint}: body read failed`, { cause: err });
  }
  return new TextDecoder().decode(all);
}

/**
 * Reads a byte stream whole, cancelling it and throwing `tooLarge()` past `limit` bytes; `onChunk`
 * is called at each chunk.
 */
export async function readStreamLimited(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  tooLarge: () => Error,
  onChunk?: () => void,
): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    onChunk?.();
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.byteLength;
  }
  return all;
}

/**
 * A streamed request body that restarts the request timer at each chunk taken from it. It reads
 * nothing ahead (high-water mark 0): what was read of `body` is what the upload took.
 */
function restartingPerChunk(
  body: ReadableStream<Uint8Array>,
  restart: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctrl) {
        const { done, value } = await reader.read();
        if (done) ctrl.close();
        else {
          restart();
          ctrl.enqueue(value);
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}

/** Restarts the request timer at each chunk; clears it once the body is fully read or cancelled. */
function withCleanup(
  res: Response,
  cleanup: () => void,
  restart: () => void,
  bodyError: (err: unknown) => Error,
): Response {
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
        } else {
          restart();
          ctrl.enqueue(value);
        }
      } catch (err) {
        cleanup();
        ctrl.error(bodyError(err));
      }
    },
    cancel(reason) {
      cleanup();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}
