// The bot's logs carry senders' words (commands, handler errors) to the operator's terminal: no
// control character or bidirectional control is written as it is, in either format.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createBotLogger } from "./logger.ts";

const HOSTILE = "x\u001b]52;c;aGk=\u0007\u009b2J\u202eevil\u007f";
const UNSAFE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;

describe("bot logger", () => {
  for (const format of ["pretty", "json"] as const) {
    it(`${format}: escapes controls in the message and in fields`, () => {
      const lines: string[] = [];
      const logger = createBotLogger({ format, level: "debug", write: (l) => void lines.push(l) });
      logger.warn({ sender: `@m${HOSTILE}:x`, command: { text: HOSTILE } }, `handler failed: ${HOSTILE}`);
      const line = lines[0] ?? "";
      assert.ok(line.endsWith("\n"));
      assert.ok(!UNSAFE.test(line.slice(0, -1)), line);
      if (format === "json") {
        const record = JSON.parse(line) as { msg: string; sender: string; command: { text: string } };
        assert.deepEqual(
          [record.msg, record.sender, record.command.text],
          [`handler failed: ${HOSTILE}`, `@m${HOSTILE}:x`, HOSTILE],
        );
      } else {
        assert.match(
          line,
          /handler failed: x\\u001b\]52;c;aGk=\\u0007\\u009b2J\\u202eevil\\u007f {2}sender=@mx\\u001b/,
        );
      }
    });
  }
});
