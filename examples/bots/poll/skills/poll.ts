// A poll counted from reactions: `!poll Lunch? | pizza | soup` posts the question with one number
// emoji per option (the bot reacts with each, so voting is one tap); every reaction to the poll is
// a vote, a user's latest one counts. A reaction taken back (by its sender, a user of its server or
// a moderator: `Room.mayRedact`) is no vote any more: the user's latest reaction still standing
// counts, or none. `!results` edits the
// poll message with the tally and answers it. Polls live in the room's account data (bot state per
// room).
import { defineSkill, type EventContext, escapeMarkdown, StateError, type StateSlot } from "keyroom/bot";

const KEYS = ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣"];
/** Voters counted per poll (bounded: the state must stay small). */
export const MAX_VOTERS = 500;
/** Votes (reactions still standing, each with its event ID) kept per poll, across its voters. */
export const MAX_VOTES_PER_POLL = 1_000;

/**
 * Pages of the poll's reactions (`/relations`, 100 a page) read to find the reaction IDs of votes
 * stored without them (before version 3): enough for `MAX_VOTES_PER_POLL` and the bot's own.
 */
export const MAX_RELATION_PAGES = 20;

/** A reaction counted: its option, and its event ID (none for one counted by state version 1 or 2). */
interface Vote {
  option: number;
  reactionId?: string;
}

interface Poll {
  eventId: string;
  question: string;
  options: string[];
  /**
   * user ID → the user's reactions still standing, one per option, latest last: the last is the
   * user's vote, and the one before counts once the last is taken back.
   */
  votes: Record<string, Vote[]>;
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
    Object.values(p.votes).every((l) => Array.isArray(l) && l.every(isVote))
  );
}

function isVote(v: unknown): v is Vote {
  const { option, reactionId } = (v ?? {}) as Partial<Vote>;
  return Number.isInteger(option) && (reactionId === undefined || typeof reactionId === "string");
}

/**
 * A poll stored by an earlier version of this skill: version 1 kept one option per user (removals
 * not counted), version 2 the options of each user's standing reactions, without their event IDs.
 */
function fromOlder(old: unknown, version: number): Poll | null {
  if (old === null || typeof old !== "object") return null;
  const votes: Record<string, Vote[]> = {};
  const stored = (old as { votes?: unknown }).votes;
  if (typeof stored === "object" && stored !== null)
    for (const [user, v] of Object.entries(stored)) {
      const options = version === 1 ? [v] : Array.isArray(v) ? v : [];
      const kept = options.filter((i): i is number => Number.isInteger(i)).map((option) => ({ option }));
      if (kept.length > 0) votes[user] = kept;
    }
  return { ...(old as Poll), votes };
}

/** `standing` with option `option` as the latest reaction, `reactionId` (one per option). */
const withVote = (standing: readonly Vote[] = [], option: number, reactionId: string): Vote[] => [
  ...standing.filter((v) => v.option !== option),
  { option, reactionId },
];

/** `poll` without the votes `gone` matches (a user left without any loses their entry). */
function without(poll: Poll, voter: string, gone: (v: Vote) => boolean): Poll {
  const { [voter]: standing = [], ...others } = poll.votes;
  const left = standing.filter((v) => !gone(v));
  return { ...poll, votes: left.length === 0 ? others : { ...others, [voter]: left } };
}

/** Whose vote the reaction `reactionId` is, if it is one. */
function voterOf(poll: Poll, reactionId: string): string | undefined {
  for (const [user, standing] of Object.entries(poll.votes))
    if (standing.some((v) => v.reactionId === reactionId)) return user;
  return undefined;
}

const idless = (poll: Poll) =>
  Object.values(poll.votes).some((l) => l.some((v) => v.reactionId === undefined));

/**
 * Votes counted before version 3 have no reaction ID, so no redaction names them (and the bot
 * forgets the reactions it saw when it restarts). The poll's reactions still standing, as the
 * server lists them (`/relations`: a redacted one is no longer among them), give each its ID; a
 * vote whose voter has no standing reaction with its key was taken back meanwhile and goes (only
 * once every page was read). A failed read changes nothing: the next redaction or `!results` tries again.
 */
async function findReactionIds(ctx: EventContext, slot: StateSlot<Poll | null>, poll: Poll): Promise<void> {
  if (!idless(poll)) return;
  const standing = new Map<string, string>(); // voter \n option → the newest standing reaction's ID
  let from: string | undefined;
  let complete = false;
  try {
    for (let page = 0; page < MAX_RELATION_PAGES && !complete; page++) {
      const res = await ctx.client.relations(ctx.roomId, poll.eventId, {
        relType: "m.annotation",
        from,
        limit: 100,
      });
      for (const ev of res.events) {
        const rel = ev.content["m.relates_to"] as { key?: unknown } | undefined;
        const option = typeof rel?.key === "string" ? KEYS.indexOf(rel.key) : -1;
        const at = `${ev.sender}\n${option}`;
        if (ev.type === "m.reaction" && option >= 0 && !standing.has(at)) standing.set(at, ev.eventId);
      }
      complete = res.nextBatch === undefined;
      from = res.nextBatch;
    }
  } catch {
    return;
  }
  const found = (voter: string, v: Vote): Vote | undefined => {
    if (v.reactionId !== undefined) return v;
    const reactionId = standing.get(`${voter}\n${v.option}`);
    return reactionId !== undefined ? { option: v.option, reactionId } : complete ? undefined : v;
  };
  await slot.update((p) => {
    if (p === null || p.eventId !== poll.eventId) return p;
    const votes: Record<string, Vote[]> = {};
    for (const [voter, list] of Object.entries(p.votes)) {
      const kept = list.map((v) => found(voter, v)).filter((v): v is Vote => v !== undefined);
      if (kept.length > 0) votes[voter] = kept;
    }
    return { ...p, votes };
  });
}

const voteCount = (poll: Poll) => Object.values(poll.votes).reduce((n, l) => n + l.length, 0);

/** The tally as Markdown (what users typed escaped: it stays text), or as plain text. */
function tally(poll: Poll, markdown: boolean): string {
  const text = markdown ? escapeMarkdown : (s: string) => s;
  const counts = poll.options.map(() => 0);
  for (const standing of Object.values(poll.votes)) {
    const i = standing.at(-1)?.option;
    if (i !== undefined && counts[i] !== undefined) counts[i]++;
  }
  const question = markdown ? `**${text(poll.question)}**` : poll.question;
  return [question, ...poll.options.map((o, i) => `${KEYS[i]} ${text(o)}: ${counts[i]}`)].join("\n");
}

export default defineSkill({
  name: "poll",
  setup(api) {
    const polls = api.bot.state.define<Poll | null>("poll", {
      version: 3,
      initial: () => null,
      validate: isPoll,
      migrate: fromOlder,
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
      const replaces = poll.votes[ctx.sender]?.some((v) => v.option === choice) === true;
      if (!replaces && voteCount(poll) >= MAX_VOTES_PER_POLL) return;
      try {
        await slot.update((p) =>
          p === null
            ? p
            : {
                ...p,
                votes: { ...p.votes, [ctx.sender]: withVote(p.votes[ctx.sender], choice, ctx.eventId) },
              },
        );
      } catch (err) {
        // Votes past what the room's state holds (long user IDs: a server picks its users' IDs)
        // are not counted, quietly: answering each would let a crowd make the bot spam the room.
        if (!(err instanceof StateError)) throw err;
      }
    });

    // A vote taken back (by its voter, or a moderator: `ctx.sender` is who, `ctx.reactionSender`
    // whose vote it was), reported for reactions the bot saw while running (see docs/bots.md). The
    // vote goes by its reaction's ID; one counted before version 3 (no ID) by its option.
    api.onReactionRemoved({ ownMessagesOnly: true }, async (ctx) => {
      const slot = ctx.roomState(polls);
      const poll = slot.get();
      const choice = KEYS.indexOf(ctx.key);
      const voter = ctx.reactionSender;
      if (poll === null || ctx.targetEventId !== poll.eventId) return;
      const gone = (v: Vote) =>
        v.reactionId === undefined ? v.option === choice : v.reactionId === ctx.reactionEventId;
      if (!poll.votes[voter]?.some(gone)) return;
      await slot.update((p) => (p === null ? p : without(p, voter, gone)));
    });

    // Any redaction, also of a reaction given before the bot restarted (which onReactionRemoved
    // does not report): a vote's reaction ID counts it out, if the client's rooms would take the
    // redaction (`Room.mayRedact`: the bot may not know whose event it was, checked here). A
    // removal that onReactionRemoved took already finds no vote with that ID: it is not counted
    // twice. One naming no vote may be of a vote stored without its ID: those are looked up.
    api.onRedaction(async (ctx) => {
      const slot = ctx.roomState(polls);
      const poll = slot.get();
      const id = ctx.redactedEventId;
      if (poll === null) return;
      const voter = voterOf(poll, id);
      if (voter === undefined) return findReactionIds(ctx, slot, poll);
      if (ctx.room?.mayRedact(ctx.sender, voter) !== true) return;
      await slot.update((p) => (p === null ? p : without(p, voter, (v) => v.reactionId === id)));
    });

    api.command("results", { help: "show the current poll's tally" }, async (ctx) => {
      const slot = ctx.roomState(polls);
      const stored = slot.get();
      if (stored !== null) await findReactionIds(ctx, slot, stored);
      const poll = slot.get();
      if (poll === null) return ctx.reply("No poll in this room.");
      await ctx.edit(poll.eventId, tally(poll, false));
      return ctx.markdown(tally(poll, true));
    });
  },
});
