// Text from the network cut to a length an application can show (a room name, a status message).

/**
 * `text` when it is at most `max` UTF-16 code units long; else its start and `…`, `max` units at
 * most, never cut between the halves of a surrogate pair (the result is as well-formed as `text`).
 * The result is a copy: V8 keeps the string a slice was taken from alive while the slice lives, so a
 * huge text cut to a few hundred units would otherwise be kept whole.
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  if (/[\ud800-\udbff]/.test(text[end - 1] ?? "")) end--;
  return `${text.slice(0, end)}…`.split("").join("");
}
