// A poll counted from reactions: `!poll Lunch? | pizza | soup` posts the question with one number
// emoji per option (the bot reacts with each, so voting is one tap); every reaction to the poll is
// a vote, a user's latest one counts. A reaction taken back (by its sender, or a moderator) is no
// vote any more: the user's latest reaction still standing counts, or none. `!results` edits the
// poll message with the tally and answers it. Polls live in the room's account data (bot state per
// room).
import { defineSkill, escapeMarkdown, StateError } from "keyroom/bot";

const KEYS = ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣"];
/** Voters counted per poll (bounded: the state must stay small). */
export const MAX_VOTERS = 500;

interface Poll {
  eventId: string;
  question: string;
  options: string[];
  /**
   * user ID → the options of the user's reactions still standing, each once, latest last: the
   * last is the user's vote, and the one before counts once the last is taken back.
   */
  votes: Record<string, number[]>;
}

function isPoll(v: unknown): v is Poll | null {
  if (v === null) return true;
  const p = v as Poll;
  return (
    typeof p === "object" &&
    typeof p.eventId === "string" &&
    typeof p.question === "string" &&
    Array.isArray(p.options) &&
    p.options.every((o) => typeof o === "string") &&
    typeof p.votes === "object" &&
    p.votes !== null &&
    Object.values(p.votes).every((l) => Array.isArray(l) && l.every((i) => Number.isInteger(i)))
  );
}

/** A poll stored by version 1 of this skill (one option per user, removals not counted). */
function fromVersion1(old: unknown): Poll | null {
  if (old === null || typeof old !== "object") return null;
  const votes: Record<string, number[]> = {};
  const v1 = (old as { votes?: unknown }).votes;
  if (typeof v1 === "object" && v1 !== null)
    for (const [user, i] of Object.entries(v1)) if (Number.isInteger(i)) votes[user] = [i as number];
  return { ...(old as Poll), votes };
}

/** `standing` with option `i` as the latest reaction (once). */
const withVote = (standing: readonly number[] = [], i: number) => [...standing.filter((o) => o !== i), i];

/** The tally as Markdown (what users typed escaped: it stays text), or as plain text. */
function tally(poll: Poll, markdown: boolean): string {
  const text = markdown ? escapeMarkdown : (s: string) => s;
  const counts = poll.options.map(() => 0);
  for (const standing of Object.values(poll.votes)) {
    const i = standing.at(-1);
    if (i !== undefined && counts[i] !== undefined) counts[i]++;
  }
  const question = markdown ? `**${text(poll.question)}**` : poll.question;
  return [question, ...poll.options.map((o, i) => `${KEYS[i]} ${text(o)}: ${counts[i]}`)].join("\n");
}

export default defineSkill({
  name: "poll",
  setup(api) {
    const polls = api.bot.state.define<Poll | null>("poll", {
      version: 2,
      initial: () => null,
      validate: isPoll,
      migrate: fromVersion1,
    });

    api.command(
      "poll",
      { args: { spec: api.arg.rest() }, help: "start a poll: QUESTION | OPTION | OPTION …" },
      async (ctx, { spec }) => {
        const [question, ...options] = spec.split("|").map((s) => s.trim());
        if (
          !question ||
          options.length < 2 ||
          options.length > KEYS.length ||
          options.some((o) => o === "")
        ) {
          return ctx.reply(
            `Usage: ${api.bot.prefix}poll QUESTION | OPTION | OPTION (2 to ${KEYS.length} options)`,
          );
        }
        // What the user typed is escaped: a "[Vote here](https://…)" stays text, not a link.
        const lines = [
          `**${escapeMarkdown(question)}**`,
          ...options.map((o, i) => `${KEYS[i]} ${escapeMarkdown(o)}`),
          "React to vote.",
        ];
        const eventId = await ctx.markdown(lines.join("\n"));
        await ctx.roomState(polls).set({ eventId, question, options, votes: {} });
        for (let i = 0; i < options.length; i++) await ctx.react(eventId, KEYS[i] as string);
      },
    );

    // Only reactions to the bot's own messages: those to anyone else's are no vote, and do not
    // reach the handler (nor cost a read of the room's state).
    api.onReaction({ ownMessagesOnly: true }, async (ctx) => {
      const slot = ctx.roomState(polls);
      const poll = slot.get();
      const choice = KEYS.indexOf(ctx.key);
      if (poll === null || ctx.targetEventId !== poll.eventId || choice < 0 || choice >= poll.options.length)
        return;
      if (!(ctx.sender in poll.votes) && Object.keys(poll.votes).length >= MAX_VOTERS) return;
      try {
        await slot.update((p) =>
          p === null
            ? p
            : { ...p, votes: { ...p.votes, [ctx.sender]: withVote(p.votes[ctx.sender], choice) } },
        );
      } catch (err) {
        // Votes past what the room's state holds (long user IDs: a server picks its users' IDs)
        // are not counted, quietly: answering each would let a crowd make the bot spam the room.
        if (!(err instanceof StateError)) throw err;
      }
    });

    // A vote taken back (by its voter, or a moderator: `ctx.sender` is who, `ctx.reactionSender`
    // whose vote it was). Reported only for reactions the bot saw while running (see docs/bots.md).
    api.onReactionRemoved({ ownMessagesOnly: true }, async (ctx) => {
      const slot = ctx.roomState(polls);
      const poll = slot.get();
      const choice = KEYS.indexOf(ctx.key);
      const voter = ctx.reactionSender;
      if (poll === null || ctx.targetEventId !== poll.eventId || !poll.votes[voter]?.includes(choice)) return;
      await slot.update((p) => {
        if (p === null) return p;
        const { [voter]: standing = [], ...others } = p.votes;
        const left = standing.filter((o) => o !== choice);
        return { ...p, votes: left.length === 0 ? others : { ...others, [voter]: left } };
      });
    });

    api.command("results", { help: "show the current poll's tally" }, async (ctx) => {
      const poll = ctx.roomState(polls).get();
      if (poll === null) return ctx.reply("No poll in this room.");
      await ctx.edit(poll.eventId, tally(poll, false));
      return ctx.markdown(tally(poll, true));
    });
  },
});
