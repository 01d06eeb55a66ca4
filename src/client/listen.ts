// Bounds for the Node HTTP servers of the layers above the client (the appservice endpoint, the
// bot's webhooks): whoever reaches a listening port can open connections to it.
import type { IncomingMessage, Server } from "node:http";
import type { Socket } from "node:net";

/**
 * How long a connection may stay open without starting a request. Node times out a request once
 * its first byte came (`headersTimeout`, `requestTimeout`), but holds a connection that sends
 * nothing for ever, so without this a few idle ones would take every slot for good.
 */
export const MAX_IDLE_CONNECTION_MS = 60_000;

/**
 * What anyone who reaches a listening port can hold: at most `maxConnections` at once (one more is
 * dropped as it arrives), none idle before its first request for longer than `idleMs`. Once a
 * request came, Node's own timeouts apply (a handler may take as long as it needs).
 */
export function limitConnections(
  server: Server,
  maxConnections: number,
  idleMs = MAX_IDLE_CONNECTION_MS,
): void {
  server.maxConnections = maxConnections;
  // An idle socket that times out is destroyed by the server (no request or response to tell).
  server.on("connection", (socket: Socket) => socket.setTimeout(idleMs));
  server.on("request", (req: IncomingMessage) => req.socket.setTimeout(0));
}
