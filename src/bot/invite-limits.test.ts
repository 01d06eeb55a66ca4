// Invitations the bot follows only because its policy is `invites: anyone` are bounded: per inviter
// (`inviteLimits.perInviterPerHour`) and by the rooms the bot is in (`inviteLimits.maxRooms`), past
// which they are declined with a log line. Owners' invitations are neither counted nor refused.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { scaledMs } from "../../test/support/budget.ts";
import { type DevServer, startDevServer } from "../devserver/index.ts";
import { type Logger, MatrixClient } from "../index.ts";
import { type BotTest, type BotTestUser, DEFAULT_WAIT_MS, startBotTest } from "./testing/index.ts";

/** The info lines logged (message and fields), for the declines. */
function capturingLogger(lines: { msg: string; fields: Record<string, unknown> }[]): Logger {
  const none = () => undefined;
  return {
    debug: none,
    info: (obj?: unknown, msg?: string) => {
      if (typeof obj === "object" && obj !== null && msg !== undefined)
        lines.push({ msg, fields: obj as Record<string, unknown> });
    },
    warn: none,
    error: none,
  };
}

/** Creates a room inviting the bot and waits until the bot has joined it or declined. */
async function inviteBot(client: MatrixClient, botId: string): Promise<{ roomId: string; answer: string }> {
  const roomId = await client.createRoom({ name: "spam?", invite: [botId], encrypted: false });
  const answer = () => {
    const m = client.getRoom(roomId)?.getMember(botId)?.membership;
    return m === "join" || m === "leave" ? m : undefined;
  };
  const settled = answer();
  if (settled !== undefined) return { roomId, answer: settled };
  return new Promise((resolve) => {
    const poke = () => {
      const m = answer();
      if (m === undefined) return;
      for (const off of offs) off();
      resolve({ roomId, answer: m });
    };
    const offs = [client.on("room.member", poke), client.on("sync", poke)];
  });
}

describe("invitations under invites: anyone", () => {
  let server: DevServer;
  let owner: MatrixClient;
  let t: BotTest;
  let alice: BotTestUser;
  let bob: BotTestUser;
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];

  before(async () => {
    server = await startDevServer({ port: 0, memory: true });
    owner = new MatrixClient({ homeserverUrl: server.baseUrl, syncTimeoutMs: 5_000 });
    await owner.register({ username: "owner", password: "owner password" });
    await owner.startSync();
    t = await startBotTest({
      waitMs: scaledMs(DEFAULT_WAIT_MS), // set-up steps and nextMessage: a busy machine is not a failure
      homeserverUrl: server.baseUrl,
      logger: capturingLogger(lines),
      config: {
        owners: [owner.userId],
        invites: "anyone",
        inviteLimits: { maxRooms: 4, perInviterPerHour: 2 },
      },
    });
    alice = await t.user("alice"); // alice's first invitation: the test room (1 room)
    bob = await t.user("bob");
  });
  after(async () => {
    await t.close();
    await owner.close();
    await server.close();
  });

  it("per inviter, then by the rooms the bot is in; owners exempt", async () => {
    assert.equal((await inviteBot(alice.client, t.bot.userId)).answer, "join", "alice's second: 2 rooms");
    const spam = await inviteBot(alice.client, t.bot.userId);
    assert.equal(spam.answer, "leave", "alice's third within the hour is declined");
    const line = lines.find((l) => l.fields.roomId === spam.roomId);
    assert.equal(line?.msg, "invitation declined: the inviter is over inviteLimits.perInviterPerHour");
    assert.equal(line?.fields.inviter, alice.userId);

    assert.equal((await inviteBot(bob.client, t.bot.userId)).answer, "join", "another inviter: 3 rooms");
    await t.advance("31m"); // one invitation back for alice (two an hour: one each 30 minutes)
    assert.equal((await inviteBot(alice.client, t.bot.userId)).answer, "join", "4 rooms");

    const full = await inviteBot(bob.client, t.bot.userId);
    assert.equal(full.answer, "leave", "bob has invitations left, but the bot is in maxRooms rooms");
    assert.equal(
      lines.find((l) => l.fields.roomId === full.roomId)?.msg,
      "invitation declined: the bot is in inviteLimits.maxRooms rooms",
    );
    assert.equal(
      (await inviteBot(owner, t.bot.userId)).answer,
      "join",
      "an owner's invitation still is followed",
    );
  });
});
