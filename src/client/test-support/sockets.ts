// Raw-socket helpers for the tests of Keyroom's listening servers (the appservice endpoint, the bot's
// webhooks and control socket): bytes no well-behaved client would send, and connection floods.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";

/** Where to connect: an `http://host:port` URL, or a Unix socket's path. */
function dial(target: string, onConnect: () => void): Socket {
  if (!target.startsWith("http")) return connect(target, onConnect);
  const { hostname, port } = new URL(target);
  return connect(Number(port), hostname, onConnect);
}

/** Everything `socket` reads until it closes. */
function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let out = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      out += d;
    });
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(out));
  });
}

/** Writes `text` in one go (no later write can fail), then reads until the server closes. */
export function rawExchange(target: string, text: string): Promise<string> {
  const socket = dial(target, () => socket.write(text));
  return readAll(socket);
}

/**
 * The server at `url` holds `max` idle connections (no request yet) and drops one more at once:
 * first, while a held one still gets its answer to `request` (one that asks for `Connection:
 * close`; the answer matches `answer`). Once the others are gone it answers again on a new
 * connection (retried: the server sees the ends only as its side reads them). Not `fetch`: undici
 * may wait for ever on a connection the server dropped.
 */
export async function holdsAtMostConnections(
  url: string,
  max: number,
  request: string,
  answer: RegExp,
): Promise<void> {
  const open = () =>
    new Promise<Socket>((resolve) => {
      const socket = dial(url, () => resolve(socket));
      socket.on("error", () => undefined);
    });
  const held: Socket[] = [];
  try {
    // Accepted in the order they connect.
    for (let i = 0; i < max; i++) held.push(await open());
    const extra = await open();
    const firstClosed = await Promise.race(
      [...held, extra].map((s, i) => new Promise<number>((resolve) => s.once("close", () => resolve(i)))),
    );
    assert.equal(firstClosed, max, "the connection over the bound goes first");
    // Not closed with the others for idling (a bound not kept): a held one is still served.
    const kept = held.shift() as Socket;
    const keptAnswer = readAll(kept);
    kept.write(request);
    assert.match(await keptAnswer, answer, "a held connection is still served");
    for (const s of held) s.destroy();
    while (!answer.test(await rawExchange(url, request))) await new Promise((r) => setImmediate(r));
  } finally {
    for (const s of held) s.destroy();
  }
}
