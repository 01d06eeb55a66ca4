// `runBotDir`'s reload (what `--watch` runs on a change): a new version whose setup fails leaves
// the previous version answering, as the log line says. On a client without a homeserver.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Logger } from "../index.ts";
import { runBotDir } from "./runner.ts";
import { fakeBotClient } from "./testing/fake-client.ts";

async function botDir(skill: string) {
  const dir = await mkdtemp(join(tmpdir(), "keyroom-skill-reload-"));
  await mkdir(join(dir, "skills"));
  await writeFile(
    join(dir, "bot.yaml"),
    "homeserver: http://127.0.0.1:1\nuser: '@bot:fake.example'\nskills: [skills/a.mjs]\n",
  );
  const file = join(dir, "skills", "a.mjs");
  await writeFile(file, skill);
  const logs: string[] = [];
  const log = (_o?: unknown, msg?: string) => void logs.push(msg ?? "");
  const logger: Logger = { debug: () => {}, info: log, warn: log, error: log };
  const f = await fakeBotClient("@bot:fake.example");
  const running = await runBotDir(dir, { logger, client: f.client });
  const close = async () => {
    await running.stop();
    await rm(dir, { recursive: true, force: true });
  };
  return { file, logs, running, close };
}

test("a reload whose setup throws keeps the previous version of the skill", async () => {
  const t = await botDir(`export default { name: "a", setup(api) { api.command("one", {}, () => {}); } };\n`);
  try {
    assert.deepEqual(t.running.bot.commandNames, ["help", "one"]);
    await writeFile(
      t.file,
      `export default { name: "a", setup(api) { api.command("two", {}, () => {}); throw new Error("oops"); } };\n`,
    );
    await t.running.reload(t.file);
    assert.ok(t.logs.includes("skill reload failed; the previous version stays"));
    assert.deepEqual(t.running.bot.commandNames, ["help", "one"], "the previous version stays");
  } finally {
    await t.close();
  }
});
