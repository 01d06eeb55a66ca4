// Text from the network shown on a terminal: a message body, a server's error string, a user ID.
// Terminals act on control characters (ESC starts sequences that move the cursor, retitle the
// window or, with OSC 52, write the clipboard), and bidirectional overrides reorder what is shown;
// so a sender could rewrite what the person at the terminal sees. Both are shown as escapes instead.

/** Controls (C0, DEL, C1) and the bidirectional embeddings, overrides and isolates. */
const UNPRINTABLE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;

const asEscape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** `text` with each control character and bidirectional control written as a `\uXXXX` escape. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, asEscape);
}

/**
 * `JSON.stringify(value)` with the controls it leaves as they are (DEL, C1, bidirectional
 * controls; it escapes C0 itself) escaped too: the same JSON value, safe to print (outside strings
 * JSON has none of them).
 */
export function printableJson(value: unknown): string {
  // JSON.stringify gives undefined for undefined, functions and symbols.
  const json: string | undefined = JSON.stringify(value);
  return (json ?? String(value)).replace(UNPRINTABLE, asEscape);
}
