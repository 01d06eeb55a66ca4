// Model test of the stream: under random interleavings of sends and incremental syncs (with a small
// timeline limit, so gaps happen), a client that follows `since` tokens and fills each `limited` gap
// from `prev_batch` through /messages sees every message exactly once, in send order.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import fc from "fast-check";
import { scaledMs } from "../support/budget.ts";
import { startTestDevServer, type TestDevServer, type TestUser } from "../support/devserver.ts";

interface Ev {
  type: string;
  event_id: string;
  content: { body?: string };
}

let s: TestDevServer;
before(async () => {
  s = await startTestDevServer();
});
after(() => s.close());

const FILTER = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 2 } } }));

class Reader {
  since: string | undefined;
  seen: string[] = [];
  lastId: string | undefined;
  constructor(
    readonly user: TestUser,
    readonly room: string,
  ) {}

  async sync(): Promise<void> {
    const q = this.since ? `&since=${this.since}` : "";
    const res = (await s.api("GET", `/sync?filter=${FILTER}${q}`, { token: this.user.accessToken })).json;
    this.since = res.next_batch;
    const tl = res.rooms.join[this.room]?.timeline;
    if (!tl) return;
    const fresh = tl.events as Ev[];
    if (tl.limited && this.lastId !== undefined) {
      // Backfill from prev_batch until reaching the last event already seen.
      const gap: Ev[] = [];
      let from: string | undefined = tl.prev_batch;
      outer: while (from) {
        const page = (
          await s.api("GET", `/rooms/${encodeURIComponent(this.room)}/messages?dir=b&limit=3&from=${from}`, {
            token: this.user.accessToken,
          })
        ).json;
        for (const e of page.chunk as Ev[]) {
          if (e.event_id === this.lastId) break outer;
          gap.unshift(e);
        }
        from = page.end;
      }
      this.take(gap);
    }
    this.take(fresh);
  }

  private take(events: Ev[]): void {
    for (const e of events) {
      this.lastId = e.event_id;
      if (e.type === "m.room.message" && e.content.body) this.seen.push(e.content.body);
    }
  }
}

it("every message is delivered exactly once and in order, gaps filled via prev_batch", {
  timeout: scaledMs(60_000),
}, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          fc.record({ send: fc.integer({ min: 0, max: 2 }) }),
          fc.record({ sync: fc.integer({ min: 0, max: 2 }) }),
        ),
        {
          minLength: 5,
          maxLength: 40,
        },
      ),
      async (ops) => {
        const users = [await s.register(), await s.register(), await s.register()];
        const room = (
          await s.api("POST", "/createRoom", {
            token: users[0]!.accessToken,
            body: { preset: "public_chat" },
          })
        ).json.room_id as string;
        for (const u of users.slice(1)) {
          await s.api("POST", `/rooms/${encodeURIComponent(room)}/join`, { token: u.accessToken, body: {} });
        }
        const readers = users.map((u) => new Reader(u, room));
        for (const r of readers) await r.sync();
        const sent: string[] = [];
        let n = 0;
        for (const op of ops) {
          if ("send" in op) {
            const body = `m${n++}`;
            sent.push(body);
            await s.api("PUT", `/rooms/${encodeURIComponent(room)}/send/m.room.message/${body}`, {
              token: users[op.send]!.accessToken,
              body: { msgtype: "m.text", body },
            });
          } else {
            await readers[op.sync]!.sync();
          }
        }
        for (const r of readers) {
          await r.sync();
          assert.deepEqual(r.seen, sent);
        }
      },
    ),
    { seed: 20_261_207, numRuns: 15 },
  );
});
