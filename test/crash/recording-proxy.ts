// A recording HTTP proxy in front of the devserver. Every client of the kill-loop tests talks to
// the server through it, so the test sees each `/keys/upload` and `/keys/claim` exchange (and each
// key backup version creation and upload) exactly as
// the server processed it, even when the client was killed before reading the response: a request
// that reached the proxy whole is always forwarded and completed (a lost response, as in a real
// crash), never cut short, and recorded when the server answers.
import {
  type ClientRequest,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server,
} from "node:http";
import type { AddressInfo } from "node:net";

export interface KeyExchange {
  /**
   * "upload" (POST /keys/upload), "claim" (POST /keys/claim), "backup_version" (POST
   * /room_keys/version) or "backup_upload" (PUT /room_keys/keys).
   */
  kind: "upload" | "claim" | "backup_version" | "backup_upload";
  /** The request's path and query (the backup version of an upload is in the query). */
  url: string;
  /** Bearer token of the caller, to map the exchange to a device afterwards (never printed). */
  token: string;
  status: number;
  request: unknown;
  response: unknown;
}

export interface RecordingProxy {
  baseUrl: string;
  readonly exchanges: KeyExchange[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "host"]);

function forwardHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

function parseJson(buf: Buffer): unknown {
  try {
    return buf.length === 0 ? undefined : JSON.parse(buf.toString("utf8"));
  } catch {
    return undefined;
  }
}

function kindOf(method: string | undefined, url: string | undefined): KeyExchange["kind"] | undefined {
  if (url === undefined) return undefined;
  const p = url.split("?")[0] ?? "";
  if (method === "PUT" && /^\/_matrix\/client\/(v3|r0)\/room_keys\/keys$/.test(p)) return "backup_upload";
  if (method !== "POST") return undefined;
  if (/^\/_matrix\/client\/(v3|r0)\/keys\/upload$/.test(p)) return "upload";
  if (/^\/_matrix\/client\/(v3|r0)\/keys\/claim$/.test(p)) return "claim";
  if (/^\/_matrix\/client\/(v3|r0)\/room_keys\/version$/.test(p)) return "backup_version";
  return undefined;
}

export async function startRecordingProxy(targetBaseUrl: string): Promise<RecordingProxy> {
  const target = new URL(targetBaseUrl);
  const exchanges: KeyExchange[] = [];
  const pending = new Set<Promise<void>>();
  const unrecorded = new Set<ClientRequest>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    // A client killed mid-body never sends `end`: nothing is forwarded, as with a real server.
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const kind = kindOf(req.method, req.url);
      const done = new Promise<void>((settle) => {
        const up = httpRequest(
          {
            protocol: target.protocol,
            hostname: target.hostname,
            port: target.port,
            method: req.method,
            path: req.url,
            headers: { ...forwardHeaders(req.headers), "content-length": String(body.length) },
          },
          (upRes) => {
            const parts: Buffer[] = [];
            upRes.on("data", (c: Buffer) => parts.push(c));
            upRes.on("end", () => {
              const resBody = Buffer.concat(parts);
              if (kind !== undefined) {
                const auth = req.headers.authorization ?? "";
                exchanges.push({
                  kind,
                  url: req.url ?? "",
                  token: auth.startsWith("Bearer ") ? auth.slice(7) : "",
                  status: upRes.statusCode ?? 0,
                  request: parseJson(body),
                  response: parseJson(resBody),
                });
              }
              if (!res.destroyed) {
                res.writeHead(upRes.statusCode ?? 502, {
                  ...forwardHeaders(upRes.headers),
                  "content-length": String(resBody.length),
                });
                res.end(resBody);
              }
              settle();
            });
            upRes.on("error", () => {
              res.destroy();
              settle();
            });
          },
        );
        up.on("error", () => {
          res.destroy();
          settle();
        });
        up.end(body);
        if (kind === undefined) {
          // Nothing to record (a /sync long-poll, a send): a client that went away takes it down.
          unrecorded.add(up);
          up.on("close", () => unrecorded.delete(up));
          res.on("close", () => {
            if (!res.writableFinished) up.destroy();
          });
        }
      });
      if (kind === undefined) return;
      pending.add(done);
      void done.then(() => pending.delete(done));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    exchanges,
    async close() {
      // Let forwarded key requests finish (and be recorded) before the server behind goes away.
      for (const up of unrecorded) up.destroy();
      await Promise.all([...pending]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
