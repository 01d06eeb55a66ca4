// The bot's webhook endpoint: `POST /hooks/<name>` with a JSON (or text) body runs the handler
// registered under that name. Each request must carry the shared secret as
// `Authorization: Bearer <secret>` (compared in constant time). Bodies are bounded and parsed
// defensively: this is the bot's only listening socket.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { constantTimeEqual } from "../crypto/primitives/bytes.ts";
import type { Logger } from "../index.ts";
import type { Bot } from "./bot.ts";

/** Largest webhook body read. */
export const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024;

export interface WebhookServerOptions {
  port: number;
  /** Interface to bind (default loopback: put a reverse proxy with TLS in front). */
  host?: string;
  /** The secret callers send as `Authorization: Bearer <secret>`. */
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
  const secret = new TextEncoder().encode(opts.secret);
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
    if (!constantTimeEqual(new TextEncoder().encode(auth), secret))
      return reply(res, 401, { error: "bad secret" });
    const raw = await readBody(req);
    if (raw === undefined) return reply(res, 413, { error: `body over ${MAX_WEBHOOK_BODY_BYTES} bytes` });
    let body: unknown = raw;
    if ((req.headers["content-type"] ?? "").includes("json")) {
      try {
        body = JSON.parse(raw);
      } catch {
        return reply(res, 400, { error: "body is not JSON" });
      }
    }
    const found = await bot.runWebhook({ name: m[1], body, headers: req.headers });
    reply(res, found ? 200 : 404, found ? { ok: true } : { error: "no such hook" });
  };
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

function reply(res: ServerResponse, status: number, body: object): void {
  if (res.headersSent) return;
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_WEBHOOK_BODY_BYTES) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(new TextDecoder("utf-8", { fatal: false }).decode(Buffer.concat(chunks))));
    req.on("error", reject);
  });
}
