import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { checkLayers, importsOf } from "../../scripts/check-layers.ts";

/** A throwaway tree: `files` maps paths under the root to their text. */
function tree(files: { readonly [path: string]: string }): string {
  const root = mkdtempSync(join(tmpdir(), "keyroom-layers-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const clean = {
  "src/crypto/primitives/random.ts": "export const random = 1;\n",
  "src/crypto/olm/session.ts":
    'import { random } from "../primitives/random.ts";\nexport const s = random;\n',
  "src/wire/sync.ts": "export type Sync = { next_batch: string };\n",
  "src/store/records.ts": 'import type { Sync } from "../wire/sync.ts";\nexport type R = Sync;\n',
  "src/e2ee/machine.ts": [
    'import { s } from "../crypto/olm/session.ts";',
    'import type { R } from "../store/records.ts";',
    "export const m: R | number = s;",
  ].join("\n"),
  "src/client/client.ts": 'export { m } from "../e2ee/machine.ts";\n',
  "src/client/client.test.ts": 'import "../cli/main.ts";\n', // tests may reach anywhere
  "src/cli/main.ts": 'import { m } from "../client/client.ts";\nexport default m;\n',
};

describe("layer check", () => {
  const roots: string[] = [];
  const check = (files: { readonly [path: string]: string }) => {
    const root = tree(files);
    roots.push(root);
    return checkLayers(root);
  };
  after(() => {
    for (const root of roots) rmSync(root, { recursive: true, force: true });
  });

  it("passes a tree whose imports go down the layers", () => {
    assert.deepEqual(check(clean), []);
  });

  it("keeps the bot framework on the public client API", () => {
    const bot = {
      ...clean,
      "src/bot/bot.ts": 'import { m } from "../client/client.ts";\nexport const b = m;\n',
    };
    assert.deepEqual(check(bot), []);
    for (const [file, spec] of [
      ["src/bot/bot.ts", "../e2ee/machine.ts"],
      ["src/bot/bot.ts", "../store/records.ts"],
      ["src/bot/bot.ts", "../crypto/olm/session.ts"],
    ] as const) {
      const problems = check({ ...bot, [file]: `import { x } from "${spec}";\nexport const b = x;\n` });
      assert.ok(
        problems.some((p) => p.startsWith(`${file}: imports`) && p.includes("but bot may not import from")),
        problems.join("\n"),
      );
    }
    const fromClient = check({ ...bot, "src/client/client.ts": 'export { b } from "../bot/bot.ts";\n' });
    assert.ok(
      fromClient.some((p) => p.includes("but client may not import from bot")),
      fromClient.join("\n"),
    );
  });

  it("fails an import from a higher layer", () => {
    const problems = check({
      ...clean,
      "src/crypto/olm/session.ts": 'import { m } from "../../client/client.ts";\nexport const s = m;\n',
    });
    assert.ok(
      problems.some((p) => p.startsWith("src/crypto/olm/session.ts: imports src/client/client.ts")),
      problems.join("\n"),
    );
  });

  it("fails the devserver importing the client, and the e2ee layer doing file access", () => {
    const problems = check({
      ...clean,
      "src/devserver/server.ts": 'import { m } from "../client/client.ts";\nexport const x = m;\n',
      "src/e2ee/io.ts": 'import { readFileSync } from "node:fs";\nexport const r = readFileSync;\n',
    });
    assert.equal(problems.length, 2, problems.join("\n"));
    assert.match(problems.join("\n"), /devserver may not import from client/);
    assert.match(problems.join("\n"), /node:fs, but the e2ee layer does no I\/O/);
  });

  it("fails an import cycle and names its files", () => {
    const problems = check({
      ...clean,
      "src/wire/a.ts": 'import { b } from "./b.ts";\nexport const a = b;\n',
      "src/wire/b.ts": 'import type { a } from "./a.ts";\nexport const b = 1 as unknown as typeof a;\n',
    });
    assert.deepEqual(problems, ["import cycle: src/wire/a.ts → src/wire/b.ts → src/wire/a.ts"]);
  });

  it("fails production code importing a test-only file", () => {
    const problems = check({
      ...clean,
      "src/e2ee/test-support/fake.ts": "export const fake = 1;\n",
      "src/e2ee/machine.ts": 'import { fake } from "./test-support/fake.ts";\nexport const m = fake;\n',
    });
    assert.match(problems.join("\n"), /imports the test-only src\/e2ee\/test-support\/fake.ts/);
  });

  it("reads every import form, and none in comments", () => {
    const text = [
      'import a from "./a.ts";',
      'import type {\n  B,\n  C as D,\n} from "./b.ts";',
      'export * from "./c.ts";',
      'import "./d.ts";',
      'const e = await import("./e.ts");',
      '// import x from "./commented.ts";',
      '/* import y from "./block.ts"; */',
    ].join("\n");
    assert.deepEqual(importsOf(text), ["./a.ts", "./b.ts", "./c.ts", "./d.ts", "./e.ts"]);
  });

  it("passes on this repository", () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    assert.deepEqual(checkLayers(root), []);
  });
});
