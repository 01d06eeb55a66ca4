// `runBotDir`'s reload (what `--watch` runs on a change): a new version whose setup fails leaves
// the previous version answering, as the log line says. On a client without a homeserver.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Logger } from "../index.ts";
import { runBotDir } from "./runner.ts";
import { fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

const ROOM = "!r:fake.example";

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
  await f.feed({});
  await f.feedTimeline(ROOM, [fakeMember("@bot:fake.example", "join")]);
  return { f, file, logs, running, close };
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

test("reloads of one skill that overlap run one after the other: the last version answers, once", async () => {
  const t = await botDir(`export default { name: "a", setup(api) { api.command("one", {}, () => {}); } };\n`);
  const g = globalThis as { skillImports?: number; skillGate?: Promise<void>; skillHits?: number };
  let open = () => {};
  g.skillGate = new Promise<void>((r) => {
    open = r;
  });
  g.skillImports = 0;
  g.skillHits = 0;
  try {
    // A setup that awaits (reads state, say) between its registrations.
    await writeFile(
      t.file,
      "globalThis.skillImports++;\n" +
        `export default { name: "a", async setup(api) { api.hears(/hello/, () => { globalThis.skillHits++; }); await globalThis.skillGate; api.command("two", {}, () => {}); } };\n`,
    );
    const both = Promise.all([t.running.reload(t.file), t.running.reload(t.file)]);
    // Both versions are loaded while the first one's setup waits; then it goes on.
    while (g.skillImports < 2) await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    open();
    await both;
    assert.deepEqual(
      t.logs.filter((l) => l.startsWith("skill reload")),
      ["skill reloaded", "skill reloaded"],
    );
    assert.deepEqual(t.running.bot.commandNames, ["help", "two"]);
    await t.f.feedTimeline(ROOM, [fakeMessage("@alice:fake.example", "hello")]);
    assert.equal(g.skillHits, 1, "one version's handler, not two");
  } finally {
    await t.close();
  }
});
