// Reminders: `!remind 5m tea` answers "⏰ @you: tea" five minutes later. The pending reminders
// live in the bot's account data (state), so they survive a restart or a move to another
// machine; a job every 15 seconds posts the ones that are due.
import { MatrixError, NetworkError } from "keyroom";
import { defineSkill, escapeMarkdown, MAX_STATE_BYTES } from "keyroom/bot";

interface Reminder {
  id: string;
  roomId: string;
  userId: string;
  /** When it is due, on the bot's clock (ms). */
  due: number;
  text: string;
}

/** Pending reminders at most (all of them share one account-data event). */
export const MAX_REMINDERS = 200;
/**
 * Pending reminders of one user, and the longest text of one: together they keep one user from
 * filling the event everyone's reminders share (its 60 KiB, `MAX_STATE_BYTES`).
 */
export const MAX_REMINDERS_PER_USER = 5;
export const MAX_REMINDER_TEXT = 500;

function isReminders(v: unknown): v is Reminder[] {
  return (
    Array.isArray(v) &&
    v.every(
      (r) =>
        typeof r === "object" &&
        r !== null &&
        typeof r.id === "string" &&
        typeof r.roomId === "string" &&
        typeof r.userId === "string" &&
        typeof r.due === "number" &&
        typeof r.text === "string",
    )
  );
}

/**
 * Whether the list still fits the one account-data event (`MAX_STATE_BYTES`, with room for the
 * state's own envelope): long texts fill it before MAX_REMINDERS do.
 */
function fits(list: Reminder[]): boolean {
  return new TextEncoder().encode(JSON.stringify(list)).length <= MAX_STATE_BYTES - 64;
}

function spoken(ms: number): string {
  const parts: string[] = [];
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
  ] as const) {
    const n = Math.floor(ms / size);
    ms -= n * size;
    if (n > 0) parts.push(`${n}${unit}`);
  }
  return parts.join(" ") || "0s";
}

export default defineSkill({
  name: "reminders",
  setup(api) {
    const { bot } = api;
    const reminders = bot.state.define<Reminder[]>("reminders", {
      version: 1,
      initial: () => [],
      validate: isReminders,
    });

    api.command(
      "remind",
      {
        args: { delay: api.arg.duration(), text: api.arg.rest() },
        help: "remind you of TEXT after DELAY (90s, 5m, 1h30m)",
      },
      async (ctx, { delay, text }) => {
        const slot = reminders.global();
        if (text.length > MAX_REMINDER_TEXT)
          return ctx.reply(`That is too long: at most ${MAX_REMINDER_TEXT} characters.`);
        const pending = slot.get();
        if (pending.filter((r) => r.userId === ctx.sender).length >= MAX_REMINDERS_PER_USER)
          return ctx.reply(`You have ${MAX_REMINDERS_PER_USER} reminders pending already.`);
        const reminder = {
          id: ctx.eventId,
          roomId: ctx.roomId,
          userId: ctx.sender,
          due: bot.clock.now() + delay,
          text,
        };
        const add = (list: Reminder[]) => [...list.filter((r) => r.id !== ctx.eventId), reminder];
        if (pending.length >= MAX_REMINDERS || !fits(add(pending)))
          return ctx.reply("Too many reminders pending; try later.");
        await slot.update(add);
        return ctx.reply(`OK, in ${spoken(delay)}.`);
      },
    );

    api.command("reminders", { help: "list your pending reminders" }, (ctx) => {
      const mine = reminders
        .global()
        .get()
        .filter((r) => r.userId === ctx.sender)
        .sort((a, b) => a.due - b.due);
      if (mine.length === 0) return ctx.reply("No reminders pending.");
      return ctx.markdown(
        mine.map((r) => `- in ${spoken(r.due - bot.clock.now())}: ${escapeMarkdown(r.text)}`).join("\n"),
      );
    });

    api.schedule("reminders.due", "*/15 * * * * *", async () => {
      const now = bot.clock.now();
      const due = reminders
        .global()
        .get()
        .filter((r) => r.due <= now);
      // Posted, or for a room closed to the bot: taken off the list. Kept for the next run: what
      // failed for now (the server down or overloaded past the client's retries).
      const done = new Set<string>();
      for (const r of due) {
        try {
          // Keyed by the reminder: a run cut short by a crash re-sends the same transaction.
          await bot
            .room(r.roomId, r.id)
            .send(`⏰ ${r.userId}: ${r.text}`, { mentions: { userIds: [r.userId] } });
        } catch (err) {
          const forNow =
            err instanceof NetworkError ||
            (err instanceof MatrixError && (err.httpStatus >= 500 || err.isRateLimited));
          api.logger.warn(
            { err, roomId: r.roomId },
            forNow ? "reminder not posted yet" : "reminder dropped: the bot cannot post there",
          );
          // Either way it holds up no one else's.
          if (forNow) continue;
        }
        done.add(r.id);
      }
      if (done.size > 0) await reminders.global().update((list) => list.filter((r) => !done.has(r.id)));
    });
  },
});
