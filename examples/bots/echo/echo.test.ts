// The echo bot (the skill `keyroom bot init` writes), loaded from its file like `bot run` does.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadSkill } from "keyroom/bot";
import { startBotTest } from "keyroom/bot/testing";

const here = fileURLToPath(new URL(".", import.meta.url));

test("echo: !echo TEXT answers TEXT, encrypted; help is generated", async () => {
  const echo = await loadSkill(join(here, "skills/echo.mjs"));
  const t = await startBotTest({ skills: [echo] });
  try {
    const alice = await t.user("alice");
    await alice.send("!echo hi   there");
    const reply = await alice.nextMessage();
    assert.equal(reply.body, "hi   there");
    assert.equal(reply.encrypted, true);
    await alice.send("!echo");
    assert.equal((await alice.nextMessage()).body, "Usage: !echo <text...>\nmissing <text>");
    await alice.send("!help");
    assert.equal(
      (await alice.nextMessage()).body,
      "Commands:\n!echo <text...> — say TEXT back\n!help [command] — list the commands, or explain one",
    );
  } finally {
    await t.close();
  }
});
