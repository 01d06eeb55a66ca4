// A joined room's ephemeral events from `/sync` (`m.typing`, `m.receipt`), checked before the
// client keeps or emits them: the server writes their content, any shape and size.
import { isIdentifier, type JsonObject } from "../../wire/index.ts";

/**
 * Users kept of one `m.typing` event (`Room.typingUserIds`), at most: the first ones, by the
 * server's order. The list is kept per room, and a server may name any number of users.
 */
export const MAX_TYPING_USERS = 100;

const isUserId = (v: unknown): v is string => isIdentifier(v) && v.startsWith("@");

/**
 * The users an `m.typing` content names: user IDs only (well-formed, at most `MAX_IDENTIFIER_LENGTH`),
 * each once, at most `MAX_TYPING_USERS`; none when `user_ids` is no array.
 */
export function typingUsersOf(content: JsonObject): string[] {
  const ids = content.user_ids;
  if (!Array.isArray(ids)) return [];
  const out = new Set<string>();
  for (const id of ids) {
    if (out.size >= MAX_TYPING_USERS) break;
    if (isUserId(id)) out.add(id);
  }
  return [...out];
}
