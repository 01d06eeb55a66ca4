// A webhook notifier: `POST /hooks/notify` with `{"text": "**deploy** done"}` (and the bot's
// secret as a bearer token) posts the text, rendered from Markdown, as a notice into the room
// named in the settings (`settings.notify.room`), or into `room` of the body when that room is
// one of the allowed ones.
import { defineSkill } from "keyroom/bot";

/** Longest text posted from one request. */
export const MAX_NOTIFY_TEXT = 4_000;

interface Settings {
  room: string;
  allowedRooms: string[];
}

function settingsOf(raw: unknown): Settings {
  const s = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  if (typeof s.room !== "string") throw new Error("settings.notify.room: expected the room ID to post into");
  const allowed = Array.isArray(s.allowedRooms)
    ? s.allowedRooms.filter((r): r is string => typeof r === "string")
    : [];
  return { room: s.room, allowedRooms: [s.room, ...allowed] };
}

/** `text` cut to at most `max` UTF-16 units, never between the two halves of a surrogate pair. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

export default defineSkill({
  name: "notify",
  setup(api) {
    const settings = settingsOf(api.settings);
    api.webhook("notify", async (req) => {
      const body = (
        typeof req.body === "object" && req.body !== null ? req.body : { text: req.body }
      ) as Record<string, unknown>;
      const text = typeof body.text === "string" ? cut(body.text, MAX_NOTIFY_TEXT) : "";
      if (text === "") throw new Error("the body needs a text");
      const room = typeof body.room === "string" ? body.room : settings.room;
      if (!settings.allowedRooms.includes(room)) throw new Error("that room is not allowed");
      await api.bot.room(room).markdown(text, { notice: true });
    });
  },
});
