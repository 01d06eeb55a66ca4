// The appservice's HTTP side: the homeserver calls it with `Authorization: Bearer hs_token`.
// Transactions (`PUT /_matrix/app/v1/transactions/{txnId}`) are checked at the edge and handed
// on; user and room queries answer "unknown" unless the application says otherwise; a ping answers,
// and the application learns its transaction ID.
// Errors are answered in the spec's shape and never escape (the process keeps running).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { limitConnections } from "../client/listen.ts";
import type { Logger } from "../client/logger.ts";
import { constantTimeEqual, sha256, utf8Encode } from "../crypto/primitives/index.ts";
import { AppserviceError } from "./errors.ts";
import { checkTxnId, parseTransaction, type Transaction } from "./transaction.ts";

/** Largest request body read from the homeserver. */
export const MAX_TXN_BODY_BYTES = 32 * 1024 * 1024;
/**
 * Connections held open at once; one more is dropped as it arrives. The homeserver needs a few;
 * the bound keeps anyone who reaches the port from taking all of the process's file descriptors.
 */
export const MAX_APPSERVICE_CONNECTIONS = 128;
export interface AppserviceHandlers {
  /** Handles a transaction once (deduplication is the caller's); a throw answers 500 so it is retried. */
  transaction(txnId: string, txn: Transaction): Promise<void>;
  /** `GET /users/{userId}`: whether the user exists (created on demand). Default: no. */
  queryUser?(userId: string): Promise<boolean>;
  /** `GET /rooms/{alias}`: whether the alias exists (created on demand). Default: no. */
  queryAlias?(alias: string): Promise<boolean>;
  /**
   * `POST /ping` (Matrix 1.7), answered 200: the homeserver reached the endpoint with the right
   * token. `transactionId` is the one the appservice gave its ping request, if any (see
   * `Appservice.pingHomeserver`).
   */
  ping?(transactionId: string | undefined): void;
}

export interface AppserviceListener {
  /** `http://host:port` the server listens on (the registration's `url`). */
  readonly url: string;
  close(): Promise<void>;
}

const PREFIX = "/_matrix/app/v1";

function errorBody(status: number, errcode: string, error: string): { status: number; body: unknown } {
  return { status, body: { errcode, error } };
}

/** HTTP status and spec error of a failure (typed errors by code; anything else is a 500). */
export function errorResponse(e: unknown): { status: number; body: unknown } {
  if (e instanceof AppserviceError) {
    switch (e.code) {
      case "MISSING_TOKEN":
        return errorBody(401, "M_UNAUTHORIZED", e.message);
      case "BAD_TOKEN":
        return errorBody(403, "M_FORBIDDEN", e.message);
      case "NOT_JSON":
        return errorBody(400, "M_NOT_JSON", e.message);
      case "BAD_TRANSACTION":
        return errorBody(400, "M_BAD_JSON", e.message);
      case "TOO_LARGE":
        return errorBody(413, "M_TOO_LARGE", e.message);
      default:
        return errorBody(500, "M_UNKNOWN", "the transaction could not be handled");
    }
  }
  return errorBody(500, "M_UNKNOWN", "the transaction could not be handled");
}

/**
 * Checks the homeserver's token (`Authorization: Bearer …`, the scheme in any case) in constant
 * time (hashes first, so lengths leak nothing).
 */
export function checkHsToken(header: string | undefined, hsToken: string): void {
  if (header === undefined) throw new AppserviceError("MISSING_TOKEN", "missing hs_token");
  // The auth scheme is case-insensitive (RFC 7235 §2.1): "bearer x" is the same as "Bearer x".
  const m = /^Bearer +(\S+)$/i.exec(header);
  const given = m?.[1];
  if (given === undefined || !constantTimeEqual(sha256(utf8Encode(given)), sha256(utf8Encode(hsToken)))) {
    throw new AppserviceError("BAD_TOKEN", "bad hs_token");
  }
}

/**
 * Reads the body, refusing it past `MAX_TXN_BODY_BYTES`: at once when announced so, else as soon
 * as it streams past (nothing more is kept; the answer says 413 and the connection closes after).
 */
function readBody(req: IncomingMessage): Promise<Buffer> {
  const tooLarge = () => new AppserviceError("TOO_LARGE", "request body too large");
  if (Number(req.headers["content-length"]) > MAX_TXN_BODY_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > MAX_TXN_BODY_BYTES) {
        req.off("data", onData);
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Decodes a body as JSON text (well-formed UTF-8 only). */
export function decodeJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new AppserviceError("NOT_JSON", "body is not UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new AppserviceError("NOT_JSON", "body is not JSON");
  }
}

/** Routes one request; returns status and JSON body. */
export async function handleRequest(
  method: string,
  rawUrl: string,
  authorization: string | undefined,
  body: () => Promise<Buffer>,
  hsToken: string,
  handlers: AppserviceHandlers,
): Promise<{ status: number; body: unknown }> {
  let pathname: string;
  try {
    pathname = new URL(rawUrl, "http://appservice.invalid").pathname;
  } catch {
    return errorBody(400, "M_UNRECOGNIZED", "Malformed request target");
  }
  if (!pathname.startsWith(`${PREFIX}/`)) return errorBody(404, "M_UNRECOGNIZED", "Unrecognized request");
  checkHsToken(authorization, hsToken);
  const parts = pathname.slice(PREFIX.length + 1).split("/");
  const arg = parts[1] !== undefined ? safeDecode(parts[1]) : undefined;
  if (method === "PUT" && parts[0] === "transactions" && parts.length === 2 && arg !== undefined) {
    checkTxnId(arg);
    const txn = parseTransaction(decodeJson(await body()));
    await handlers.transaction(arg, txn);
    return { status: 200, body: {} };
  }
  if (method === "GET" && parts[0] === "users" && parts.length === 2 && arg !== undefined) {
    const exists = (await handlers.queryUser?.(arg)) ?? false;
    return exists ? { status: 200, body: {} } : errorBody(404, "M_NOT_FOUND", "No such user");
  }
  if (method === "GET" && parts[0] === "rooms" && parts.length === 2 && arg !== undefined) {
    const exists = (await handlers.queryAlias?.(arg)) ?? false;
    return exists ? { status: 200, body: {} } : errorBody(404, "M_NOT_FOUND", "No such room alias");
  }
  if (method === "POST" && parts[0] === "ping" && parts.length === 1) {
    handlers.ping?.(parsePing(await body()));
    return { status: 200, body: {} };
  }
  return errorBody(404, "M_UNRECOGNIZED", "Unrecognized request");
}

/**
 * The `transaction_id` of a ping's body (a JSON object; the field is optional, and an empty body
 * reads as `{}`). Throws `NOT_JSON` or `BAD_TRANSACTION` (400) for a body that is not such.
 */
export function parsePing(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0) return undefined;
  const raw = decodeJson(bytes);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new AppserviceError("BAD_TRANSACTION", "a ping's body is a JSON object");
  }
  const id = (raw as { transaction_id?: unknown }).transaction_id;
  if (id !== undefined && typeof id !== "string") {
    throw new AppserviceError("BAD_TRANSACTION", "a ping's transaction_id is a string");
  }
  return id;
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Starts the listener on `port` (0: any free port) and `host` (default loopback). */
export async function listenAppservice(
  opts: { port: number; host?: string; hsToken: string; logger: Logger },
  handlers: AppserviceHandlers,
): Promise<AppserviceListener> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      let out: { status: number; body: unknown };
      try {
        out = await handleRequest(
          req.method ?? "GET",
          req.url ?? "/",
          req.headers.authorization,
          () => readBody(req),
          opts.hsToken,
          handlers,
        );
      } catch (e) {
        out = errorResponse(e);
        const code = e instanceof AppserviceError ? e.code : e instanceof Error ? e.name : "error";
        opts.logger.warn({ code, status: out.status }, "appservice request refused");
      }
      if (res.destroyed) return;
      const bytes = Buffer.from(JSON.stringify(out.body));
      res.writeHead(out.status, {
        "Content-Type": "application/json",
        "Content-Length": String(bytes.length),
        // A body left unread (refused token, too large): the connection ends after the answer
        // rather than taking in the rest of it.
        ...(req.complete ? {} : { Connection: "close" }),
      });
      res.end(bytes);
    })();
  });
  limitConnections(server, MAX_APPSERVICE_CONNECTIONS);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
