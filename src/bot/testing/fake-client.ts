// A bot's client without a homeserver (`keyroom/bot/testing`), for tests that need exact sync
// responses or many of them: what the bot does with hostile input, crowds, two bots relaying. Sync
// responses are fed in (`feedSync`, as an appservice user's are), and every request is answered
// here and recorded, so a test sees exactly what the bot sent. No encryption: encrypted events
// stay undecryptable (a test emits `room.decrypted` itself). For end-to-end tests with real
// users and E2EE, `startBotTest`.
import { MatrixClient } from "../../client/index.ts";
import { type JsonObject, syncResponseSchema } from "../../wire/index.ts";

export interface SentEvent {
  roomId: string;
  type: string;
  txnId: string;
  content: JsonObject;
}

export interface FakeBotClient {
  client: MatrixClient;
  /** Room events the bot sent, in order. */
  sent: SentEvent[];
  /** Feeds one sync response whose `join` section holds `timeline` for `roomId`. */
  feedTimeline(roomId: string, timeline: JsonObject[], opts?: { limited?: boolean }): Promise<void>;
  /** Feeds one sync response holding an invitation to `roomId` from `inviter`. */
  feedInvite(roomId: string, inviter: string): Promise<void>;
  /** Feeds any sync response (a `next_batch` is added). */
  feed(response: JsonObject): Promise<void>;
  /** Answers one `GET /sync` with `response` (the first one the client makes has no `since`). */
  syncOnce(response: JsonObject): Promise<void>;
}

export const FAKE_BOT_USER = "@bot:fake.example";

let eventCounter = 0;

/**
 * Sent "now" on the machine's clock, so a test that hands the bot an event it never saw arrive
 * (a `room.decrypted` of its own) does not have it judged days late (`lateEvents`); strictly
 * increasing, as a room's timeline is.
 */
let lastSent = 0;
function sentNow(): number {
  lastSent = Math.max(Date.now(), lastSent + 1);
  return lastSent;
}

/** A message event from `sender` (the event ID made up). */
export function fakeMessage(sender: string, body: string, extra: JsonObject = {}): JsonObject {
  return {
    type: "m.room.message",
    event_id: `$fake${++eventCounter}`,
    sender,
    origin_server_ts: sentNow(),
    content: { msgtype: "m.text", body, ...extra },
  };
}

/** A membership event for `userId`. */
export function fakeMember(userId: string, membership: string, sender = userId): JsonObject {
  return {
    type: "m.room.member",
    state_key: userId,
    event_id: `$fake${++eventCounter}`,
    sender,
    origin_server_ts: sentNow(),
    content: { membership },
  };
}

/** `userId`: the bot's (default `FAKE_BOT_USER`), e.g. for two bots in one room. */
export async function fakeBotClient(userId = FAKE_BOT_USER): Promise<FakeBotClient> {
  const sent: SentEvent[] = [];
  let batch = 0;
  let sendCounter = 0;
  const syncAnswers: JsonObject[] = [];
  const json = (body: unknown) =>
    new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
  const notFound = () =>
    new Response(JSON.stringify({ errcode: "M_NOT_FOUND", error: "Event not found" }), {
      status: 404,
      headers: { "content-type": "application/json" },
    });
  /** The events the bot sent, by the event ID the fake server gave them. */
  const sentIds = new Map<string, SentEvent>();
  const client = new MatrixClient({
    homeserverUrl: "http://fake.example",
    appserviceUser: true,
    fetch: async (input, init) => {
      const url = new URL(input);
      const send = /\/rooms\/([^/]+)\/send\/([^/]+)\/([^/]+)$/.exec(url.pathname);
      if (send !== null && init.method === "PUT") {
        sent.push({
          roomId: decodeURIComponent(send[1] ?? ""),
          type: decodeURIComponent(send[2] ?? ""),
          txnId: decodeURIComponent(send[3] ?? ""),
          content: JSON.parse(String(init.body)) as JsonObject,
        });
        const eventId = `$sent${++sendCounter}`;
        sentIds.set(eventId, sent.at(-1) as SentEvent);
        return json({ event_id: eventId });
      }
      // An event the bot sent, as the server shows it (`onReaction({ ownMessagesOnly })` asks).
      const one = /\/rooms\/([^/]+)\/event\/([^/]+)$/.exec(url.pathname);
      if (one !== null && (init.method ?? "GET") === "GET") {
        const s = sentIds.get(decodeURIComponent(one[2] ?? ""));
        if (s === undefined || s.roomId !== decodeURIComponent(one[1] ?? "")) return notFound();
        return json({
          type: s.type,
          event_id: decodeURIComponent(one[2] ?? ""),
          room_id: s.roomId,
          sender: userId,
          origin_server_ts: sentNow(),
          content: s.content,
        });
      }
      if (url.pathname.endsWith("/sync")) return json({ next_batch: `b${++batch}`, ...syncAnswers.shift() });
      // No encryption: no room has m.room.encryption (asked before sending into a room not joined in sync).
      if (/\/rooms\/[^/]+\/state\/m\.room\.encryption\/?$/.test(url.pathname)) return notFound();
      if (url.pathname.endsWith("/messages")) return json({ start: "p", chunk: [] });
      if (url.pathname.endsWith("/account/whoami")) return json({ user_id: userId, device_id: "FAKE" });
      if (/\/rooms\/[^/]+\/join$|\/join\/[^/]+$/.test(url.pathname)) {
        return json({ room_id: decodeURIComponent(url.pathname.split("/").at(-2) ?? "") });
      }
      return json({});
    },
  });
  await client.restore({
    homeserverUrl: "http://fake.example",
    userId,
    deviceId: "FAKE",
    accessToken: "fake-token",
  });
  // As a server's answer reaches a client: JSON text, read by the sync schema (as `/sync` answers
  // and appservice transactions are).
  const feed = (response: JsonObject) =>
    client.feedSync(
      syncResponseSchema.parse(JSON.parse(JSON.stringify({ next_batch: `b${++batch}`, ...response }))),
    );
  return {
    client,
    sent,
    feed,
    syncOnce: (response) => {
      syncAnswers.push(response);
      return client.syncOnce({ timeoutMs: 0 });
    },
    feedTimeline: (roomId, timeline, opts = {}) =>
      feed({
        rooms: {
          join: {
            [roomId]: { timeline: { events: timeline, limited: opts.limited ?? false, prev_batch: "p" } },
          },
        },
      }),
    feedInvite: (roomId, inviter) =>
      feed({
        rooms: {
          invite: {
            [roomId]: {
              invite_state: {
                events: [
                  {
                    type: "m.room.member",
                    state_key: userId,
                    sender: inviter,
                    content: { membership: "invite" },
                  },
                ],
              },
            },
          },
        },
      }),
  };
}
