// The bot's webhook endpoint: `POST /hooks/<name>` with a JSON (or text) body runs the handler
// registered under that name. Each request must carry the shared secret as
// `Authorization: Bearer <secret>` (compared in constant time). Bodies are bounded (a body
// announced too large is refused before it is read) and must be well-formed UTF-8 (and JSON without
// lone surrogates); the handler never sees the secret: this is the bot's only listening socket.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { limitConnections } from "../client/listen.ts";
import { constantTimeEqual, sha256, utf8Encode } from "../crypto/primitives/index.ts";
import type { Logger } from "../index.ts";
import type { Bot } from "./bot.ts";

/** Largest webhook body read. */
export const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024;
/**
 * Connections held open at once; one more is dropped as it arrives (so whoever reaches the port
 * cannot take all of the process's file descriptors, nor run handlers without bound). One that
 * starts no request is closed after `MAX_IDLE_CONNECTION_MS`.
 */
export const MAX_WEBHOOK_CONNECTIONS = 128;

/**
 * Shortest secret the server takes. An empty one would let through any request without an
 * `Authorization` header (its hash is the hash of the empty secret), a short one a guess.
 */
export const MIN_WEBHOOK_SECRET_LENGTH = 16;

export class WebhookSecretError extends Error {
  override readonly name = "WebhookSecretError";
}

export interface WebhookServerOptions {
  port: number;
  /** Interface to bind (default loopback: put a reverse proxy with TLS in front). */
  host?: string;
  /** The secret callers send as `Authorization: Bearer <secret>`: `MIN_WEBHOOK_SECRET_LENGTH`+ characters, no spaces. */
  secret: string;
}

export interface WebhookServer {
  /** `http://host:port` */
  readonly url: string;
  close(): Promise<void>;
}

export async function startWebhookServer(
  bot: Pick<Bot, "runWebhook">,
  opts: WebhookServerOptions,
  logger: Logger,
): Promise<WebhookServer> {
  if (opts.secret.length < MIN_WEBHOOK_SECRET_LENGTH || /\s/.test(opts.secret)) {
    throw new WebhookSecretError(
      `the webhook secret must be ${MIN_WEBHOOK_SECRET_LENGTH}+ characters without spaces (sent as "Authorization: Bearer <secret>")`,
    );
  }
  // Hashed, so the comparison takes the same time whatever the length of what a caller sends.
  const secret = sha256(utf8Encode(opts.secret));
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      logger.error({ err }, "webhook failed");
      reply(res, 500, { error: "handler failed" });
    });
  });
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const m = /^\/hooks\/([A-Za-z0-9_-]{1,64})\/?(?:\?.*)?$/.exec(req.url ?? "");
    if (m === null || m[1] === undefined) return reply(res, 404, { error: "no such hook" });
    if (req.method !== "POST") return reply(res, 405, { error: "POST only" });
    const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1] ?? "";
    if (!constantTimeEqual(sha256(utf8Encode(auth)), secret)) {
      return reply(res, 401, { error: "bad secret" }, true);
    }
    const bytes = await readBody(req);
    if (bytes === undefined) {
      return reply(res, 413, { error: `body over ${MAX_WEBHOOK_BODY_BYTES} bytes` }, true);
    }
    let raw: string;
    try {
      raw = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return reply(res, 400, { error: "body is not UTF-8" });
    }
    let body: unknown = raw;
    if ((req.headers["content-type"] ?? "").includes("json")) {
      try {
        body = JSON.parse(raw);
      } catch {
        return reply(res, 400, { error: "body is not JSON" });
      }
      if (!wellFormedJson(body)) return reply(res, 400, { error: "body is not well-formed Unicode" });
    }
    const { authorization: _secret, ...headers } = req.headers;
    const found = await bot.runWebhook({ name: m[1], body, headers });
    reply(res, found ? 200 : 404, found ? { ok: true } : { error: "no such hook" });
  };
  limitConnections(server, MAX_WEBHOOK_CONNECTIONS);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === "IPv6" ? `[${addr.address}]` : addr.address}:${addr.port}`;
  logger.info({ url }, "webhook server listening");
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `close`: the request's body was not read, so the connection ends after the answer. */
function reply(res: ServerResponse, status: number, body: object, close = false): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "Content-Type": "application/json", ...(close ? { Connection: "close" } : {}) });
  res.end(JSON.stringify(body));
}

/** The body, or undefined past `MAX_WEBHOOK_BODY_BYTES` (announced, or as it streams in). */
function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  if (Number(req.headers["content-length"]) > MAX_WEBHOOK_BODY_BYTES) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_WEBHOOK_BODY_BYTES) {
        // Nothing more is kept; the answer says so and the connection closes after it.
        req.off("data", onData);
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Whether every string (keys too) in a parsed JSON value is well-formed Unicode (no lone surrogate). */
function wellFormedJson(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "string") {
      if (!v.isWellFormed()) return false;
    } else if (Array.isArray(v)) {
      for (const item of v) stack.push(item);
    } else if (typeof v === "object" && v !== null) {
      for (const [k, item] of Object.entries(v)) {
        if (!k.isWellFormed()) return false;
        stack.push(item);
      }
    }
  }
  return true;
}
