// Reading a secret (password, passphrase) typed at a terminal without echo. The bytes are decoded
// as one stream: a character typed as several UTF-8 bytes may come split across two reads.
import { StringDecoder } from "node:string_decoder";

/** Control characters a secret prompt handles itself (raw mode passes them through). */
const ENTER = new Set(["\r", "\n", "\u0004"]);
const BACKSPACE = new Set(["\u007f", "\b"]);
const INTERRUPT = "\u0003";

/** What the prompt needs of a terminal's input (`process.stdin` when it is a TTY). */
export interface SecretInput {
  setRawMode(raw: boolean): unknown;
  resume(): unknown;
  pause(): unknown;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  off(event: "data", listener: (chunk: Buffer) => void): unknown;
}

/**
 * Reads a secret from `input` in raw mode (no echo) after writing `prompt` with `write`. Enter
 * ends it; Backspace removes the last character; Ctrl-C resolves with undefined and calls
 * `onInterrupt`. Raw mode is turned off and the input paused before it resolves.
 */
export function readSecretFrom(
  input: SecretInput,
  prompt: string,
  write: (text: string) => void,
  onInterrupt: () => void,
): Promise<string | undefined> {
  // Raw mode (no echo) before the prompt: nothing typed after seeing it can be echoed.
  input.setRawMode(true);
  write(prompt);
  return new Promise((resolve) => {
    const decoder = new StringDecoder("utf8");
    let text = "";
    const done = (value: string | undefined) => {
      input.off("data", onData);
      input.setRawMode(false);
      input.pause();
      write("\n");
      resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of decoder.write(chunk)) {
        if (ENTER.has(ch)) return done(text);
        if (ch === INTERRUPT) {
          done(undefined);
          onInterrupt();
          return;
        }
        if (BACKSPACE.has(ch)) text = [...text].slice(0, -1).join("");
        else text += ch;
      }
    };
    input.resume();
    input.on("data", onData);
  });
}
