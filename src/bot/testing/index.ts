// `keyroom/bot/testing`: a bot under test in one process. Starts the devserver (in memory), the
// bot (from skills, code or a config), and test users in an encrypted room with it:
//
//   const t = await startBotTest({ skills: [reminders] });
//   const alice = await t.user("alice");
//   await alice.send("!remind 5m tea");
//   await t.advance("5m");                       // the fake clock drives scheduled jobs
//   assert.equal((await alice.nextMessage()).body, "⏰ tea");
//   await t.close();
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DevServer, type DevServerOptions, startDevServer } from "../../devserver/index.ts";
import { type Logger, MatrixClient, type RoomEvent, silentLogger } from "../../index.ts";
import { Bot } from "../bot.ts";
import { parseDuration } from "../commands/args.ts";
import { type BotConfigInput, validateConfig } from "../config.ts";
import { SqliteLocalStore } from "../local-store.ts";
import type { BotOptions } from "../options.ts";
import { botOptionsFrom } from "../runner.ts";
import { botPaths, openBotClient } from "../session.ts";
import { installSkill, type Skill } from "../skills.ts";
import { FakeClock } from "./fake-clock.ts";

export {
  FAKE_BOT_USER,
  type FakeBotClient,
  fakeBotClient,
  fakeMember,
  fakeMessage,
  type SentEvent,
} from "./fake-client.ts";
export { FakeClock } from "./fake-clock.ts";

/** Default wait for `nextMessage` and the set-up steps: generous for a loaded machine. */
export const DEFAULT_WAIT_MS = 30_000;

export interface BotTestOptions {
  /** Skills to install. */
  skills?: readonly Skill[];
  /** Code that registers handlers on the bot (after the skills). */
  setup?: (bot: Bot) => void | Promise<void>;
  /** Config keys (as in bot.yaml) for the bot: owners, prefix, rateLimit, settings, ... */
  config?: Partial<BotConfigInput>;
  /** Further `Bot` options (over what the config gives). */
  bot?: Partial<Omit<BotOptions, "client">>;
  /** The room is encrypted (default true). */
  encrypted?: boolean;
  /** The room's version (default: the homeserver's). */
  roomVersion?: string;
  /** Use this devserver instead of starting one (it is not closed by `close`). */
  homeserverUrl?: string;
  devserver?: DevServerOptions;
  logger?: Logger;
  /** How long `nextMessage` and set-up waits last by default. */
  waitMs?: number;
}

/** A message as a test user received it. */
export interface ReceivedMessage {
  roomId: string;
  eventId: string;
  sender: string;
  body: string;
  msgtype: string | undefined;
  /** `formatted_body` of HTML messages. */
  html: string | undefined;
  /** Whether it arrived encrypted (and decrypted). */
  encrypted: boolean;
  event: RoomEvent;
}

export interface BotTestUser {
  readonly client: MatrixClient;
  readonly userId: string;
  /** Sends a text message (to the test room unless `roomId`); returns its event ID. */
  send(text: string, opts?: { roomId?: string }): Promise<string>;
  react(eventId: string, key: string): Promise<string>;
  /** Redacts an event (takes back a reaction) in the test room; returns the redaction's event ID. */
  redact(eventId: string, opts?: { reason?: string }): Promise<string>;
  sendFile(data: Uint8Array, filename: string, contentType?: string): Promise<string>;
  /** The next message the bot sends to the room (the test room unless `roomId`) after the ones already taken. */
  nextMessage(opts?: { timeoutMs?: number; roomId?: string }): Promise<ReceivedMessage>;
  /**
   * Waits until this user received the bot's message `eventId` (one another user already took),
   * and takes it and everything before it in its room: `nextMessage` then returns what follows.
   */
  skipPast(eventId: string, opts?: { timeoutMs?: number }): Promise<void>;
  /** Every message the bot sent that this user received so far, in any room. */
  readonly received: readonly ReceivedMessage[];
}

export interface BotTest {
  readonly homeserverUrl: string;
  readonly bot: Bot;
  readonly clock: FakeClock;
  /** The encrypted room the users and the bot share (created with the first user). */
  readonly roomId: string;
  readonly dataDir: string;
  /** A new test user in the room (the first one creates it and invites the bot). */
  user(name?: string): Promise<BotTestUser>;
  /** Moves the fake clock (`"5m"` or milliseconds), running the scheduled jobs that fall due. */
  advance(by: string | number): Promise<void>;
  /** Stops the bot and starts it again on the same device and stores (a restart). */
  restartBot(): Promise<Bot>;
  close(): Promise<void>;
}

let counter = 0;

export async function startBotTest(opts: BotTestOptions = {}): Promise<BotTest> {
  const logger = opts.logger ?? silentLogger;
  const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
  const dir = await mkdtemp(join(tmpdir(), "keyroom-bot-test-"));
  const server: DevServer | undefined =
    opts.homeserverUrl === undefined
      ? await startDevServer({ port: 0, memory: true, ...opts.devserver })
      : undefined;
  const homeserverUrl = opts.homeserverUrl ?? (server as DevServer).baseUrl;
  const clock = new FakeClock();
  const dataDir = join(dir, "bot");
  const botName = `bot${++counter}${Date.now().toString(36)}`;
  const users: MatrixClient[] = [];
  let roomId: string | undefined;
  let bot: Bot;
  let local: SqliteLocalStore;

  const startBot = async (): Promise<Bot> => {
    const { client } = await openBotClient({
      dataDir,
      homeserverUrl,
      userId: botName,
      password: "bot password",
      register: true,
      logger,
      client: { syncTimeoutMs: 5_000 },
      ...(opts.config?.encryption?.shareWith !== undefined
        ? { shareWith: opts.config.encryption.shareWith }
        : {}),
    });
    const config = validateConfig({ homeserver: homeserverUrl, user: client.userId, ...opts.config });
    local = await SqliteLocalStore.open(botPaths(dataDir).localStore);
    const b = new Bot({ ...botOptionsFrom(config), clock, logger, localStore: local, ...opts.bot, client });
    for (const skill of opts.skills ?? []) await installSkill(b, skill, config.settings[skill.name], logger);
    await opts.setup?.(b);
    await b.start();
    return b;
  };
  const stopBot = async () => {
    await bot.stop();
    await bot.client.close();
    local.close();
  };
  bot = await startBot();

  const waitFor = async (what: string, check: () => boolean, client: MatrixClient): Promise<void> => {
    if (check()) return;
    await new Promise<void>((resolve, reject) => {
      const offs: (() => void)[] = [];
      const done = (err?: Error) => {
        clearTimeout(timer);
        for (const off of offs) off();
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}`)), waitMs);
      const poke = () => {
        if (check()) done();
      };
      offs.push(
        client.on("room.member", poke),
        client.on("room.myMembership", poke),
        client.on("sync", poke),
      );
    });
  };

  const makeUser = async (name = `user${++counter}`): Promise<BotTestUser> => {
    const localpart = `${name}${Date.now().toString(36)}${counter}`;
    const client = new MatrixClient({
      homeserverUrl,
      syncTimeoutMs: 5_000,
      encryption: { store: { directory: join(dir, localpart) } },
    });
    await client.register({ username: localpart, password: "user password" });
    users.push(client);
    const received: ReceivedMessage[] = [];
    const waiters: (() => void)[] = [];
    const taken = new Map<string, number>();
    const record = (ev: RoomEvent) => {
      if (ev.sender !== bot.userId || ev.type !== "m.room.message") return;
      if (ev.content["m.new_content"] !== undefined) return;
      if (received.some((m) => m.eventId === ev.eventId)) return;
      const str = (k: string) => (typeof ev.content[k] === "string" ? (ev.content[k] as string) : undefined);
      received.push({
        roomId: ev.roomId,
        eventId: ev.eventId,
        sender: ev.sender,
        body: str("body") ?? "",
        msgtype: str("msgtype"),
        html: str("formatted_body"),
        encrypted: ev.encryption?.decrypted === true,
        event: ev,
      });
      for (const w of waiters.splice(0)) w();
    };
    client.on("room.event", (_room, ev) => record(ev));
    client.on("room.decrypted", (_room, ev) => record(ev));
    await client.startSync();
    if (roomId === undefined) {
      roomId = await client.createRoom({
        name: "bot test",
        invite: [bot.userId],
        encrypted: opts.encrypted ?? true,
        ...(opts.roomVersion === undefined ? {} : { roomVersion: opts.roomVersion }),
      });
    } else {
      const first = users[0] as MatrixClient;
      await first.invite(roomId, client.userId);
      const room = roomId;
      await waitFor("the invitation", () => client.getRoom(room)?.membership === "invite", client);
      await client.joinRoom(roomId);
    }
    const room = roomId;
    await waitFor(
      "the bot to join",
      () => client.getRoom(room)?.getMember(bot.userId)?.membership === "join",
      client,
    );
    return {
      client,
      userId: client.userId,
      received,
      send: (text, { roomId: target } = {}) => client.sendText(target ?? room, text),
      react: (eventId, key) => client.react(room, eventId, key),
      redact: (eventId, redactOpts) => client.redact(room, eventId, redactOpts),
      sendFile: (data, filename, contentType) =>
        client.sendFile(room, data, { filename, ...(contentType ? { contentType } : {}) }),
      skipPast: async (eventId, { timeoutMs } = {}) => {
        const deadline = Date.now() + (timeoutMs ?? waitMs);
        for (;;) {
          const found = received.find((m) => m.eventId === eventId);
          if (found !== undefined) {
            const inRoom = received.filter((m) => m.roomId === found.roomId);
            taken.set(found.roomId, inRoom.indexOf(found) + 1);
            return;
          }
          const left = deadline - Date.now();
          if (left <= 0)
            throw new Error(`message ${eventId} did not arrive within ${timeoutMs ?? waitMs} ms`);
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, left);
            waiters.push(() => {
              clearTimeout(timer);
              resolve();
            });
          });
        }
      },
      nextMessage: async ({ timeoutMs, roomId: target = room } = {}) => {
        const deadline = Date.now() + (timeoutMs ?? waitMs);
        const inRoom = () => received.filter((m) => m.roomId === target);
        const index = taken.get(target) ?? 0;
        while (inRoom().length <= index) {
          const left = deadline - Date.now();
          if (left <= 0) throw new Error(`no message from the bot within ${timeoutMs ?? waitMs} ms`);
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, left);
            waiters.push(() => {
              clearTimeout(timer);
              resolve();
            });
          });
        }
        taken.set(target, index + 1);
        return inRoom()[index] as ReceivedMessage;
      },
    };
  };

  return {
    homeserverUrl,
    get bot() {
      return bot;
    },
    clock,
    get roomId() {
      if (roomId === undefined) throw new Error("no room yet: create a user first");
      return roomId;
    },
    dataDir,
    user: makeUser,
    advance: async (by) => {
      const ms = typeof by === "number" ? by : parseDuration(by);
      if (ms === undefined) throw new RangeError(`bad duration "${by}"`);
      await clock.advance(ms, () => bot.scheduler.idle());
    },
    restartBot: async () => {
      await stopBot();
      bot = await startBot();
      return bot;
    },
    close: async () => {
      await stopBot().catch(() => undefined);
      for (const u of users) await u.close().catch(() => undefined);
      await server?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
