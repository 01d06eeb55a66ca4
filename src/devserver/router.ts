// A small router: method + path pattern (`:name` captures one decoded segment) → handler.
import type { IncomingHttpHeaders } from "node:http";
import type * as z from "../wire/zod.ts";
import { badJson, MatrixError } from "./errors.ts";
import type { Authed } from "./types.ts";

/**
 * Deepest nesting of a JSON request body (the canonical JSON events are hashed over allows 64 too).
 * Deeper bodies overflowed the stack when stored (`JSON.stringify`: 500s), and one stored just under
 * that could have failed every later /sync answer that carries it.
 */
export const MAX_JSON_BODY_DEPTH = 64;

export type AuthMode = "required" | "optional" | "none";

export interface RouteRequest {
  method: string;
  path: string;
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  rawBody: Buffer;
  ip: string;
  /** Set when the route requires auth (and for optional auth when a valid token came). */
  auth: Authed | undefined;
  /** The request aborted (client went away); long polls stop waiting. */
  signal: AbortSignal;
}

export type RouteResponse =
  | { status?: number; json: unknown; headers?: Record<string, string> }
  | { status?: number; bytes: Buffer; contentType: string; headers?: Record<string, string> };

export type Handler = (req: RouteRequest) => RouteResponse | Promise<RouteResponse>;

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
  auth: AuthMode;
}

export interface Match {
  handler: Handler;
  auth: AuthMode;
  params: Record<string, string>;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler, auth: AuthMode = "required"): void {
    this.routes.push({ method, segments: pattern.split("/").slice(1), handler, auth });
  }

  /** Registers a Client-Server route under v3 and its r0 alias (older clients still call r0). */
  client(method: string, pattern: string, handler: Handler, auth: AuthMode = "required"): void {
    this.add(method, `/_matrix/client/v3${pattern}`, handler, auth);
    this.add(method, `/_matrix/client/r0${pattern}`, handler, auth);
  }

  /** Every registered route as `[method, pattern]` (for tests that sweep the API surface). */
  list(): [string, string][] {
    return this.routes.map((r) => [r.method, `/${r.segments.join("/")}`]);
  }

  /**
   * Finds the route. Unknown paths → 404 M_UNRECOGNIZED; a known path with another method → 405
   * M_UNRECOGNIZED, as the spec asks.
   */
  match(method: string, path: string): Match {
    const parts = path.split("/").slice(1);
    let pathKnown = false;
    for (const r of this.routes) {
      if (r.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const seg = r.segments[i]!;
        const part = parts[i]!;
        if (seg.startsWith(":")) {
          // An empty final segment is a legitimate value (the empty state key of `/state/{type}/`).
          if (part === "" && i !== parts.length - 1) {
            ok = false;
            break;
          }
          params[seg.slice(1)] = decodeSegment(part);
        } else if (seg !== part) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (r.method !== method) {
        pathKnown = true;
        continue;
      }
      return { handler: r.handler, auth: r.auth, params };
    }
    if (pathKnown) throw new MatrixError(405, "M_UNRECOGNIZED", "Unrecognized request method");
    throw new MatrixError(404, "M_UNRECOGNIZED", "Unrecognized request");
  }
}

function decodeSegment(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new MatrixError(400, "M_UNRECOGNIZED", "Malformed percent-encoding in path");
  }
}

/** Parses the request body as a JSON object and validates it with `schema`. */
export function jsonBody<T extends z.ZodMiniType>(req: RouteRequest, schema: T): z.infer<T> {
  const text = req.rawBody.length === 0 ? "{}" : req.rawBody.toString("utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new MatrixError(400, "M_NOT_JSON", "Content not JSON.");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new MatrixError(400, "M_NOT_JSON", "Content must be a JSON object.");
  }
  if (nestsDeeperThan(parsed, MAX_JSON_BODY_DEPTH)) {
    throw badJson(`Request body nests deeper than ${MAX_JSON_BODY_DEPTH} levels`);
  }
  const r = schema.safeParse(parsed);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join(".")}` : "";
    throw badJson(`Invalid request body${where}: ${issue?.message ?? "invalid"}`);
  }
  return r.data;
}

/** Whether `value` (parsed JSON) nests deeper than `levels`; iterative, so any depth is safe to check. */
function nestsDeeperThan(value: unknown, levels: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, depth] = top;
    if (typeof v !== "object" || v === null) continue;
    if (depth > levels) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** The authenticated user of a route registered with auth "required". */
export function authed(req: RouteRequest): Authed {
  if (!req.auth) throw new MatrixError(401, "M_MISSING_TOKEN", "Missing access token");
  return req.auth;
}
