#!/usr/bin/env node
// Runs the test suite with Node's test runner over TypeScript sources (through tsx).
// `--long` adds the soak / fuzz / kill-loop tests (files named *.long.test.ts).
// Any other argument is a path filter: `npm test -- olm` runs the files whose path contains "olm".
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const long = args.includes("--long");
const filters = args.filter((a) => !a.startsWith("--"));
const root = new URL("..", import.meta.url).pathname;

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith(".test.ts")) out.push(relative(root, path));
  }
  return out;
}

const files = ["src", "test", "examples", "bench"]
  .flatMap((d) => {
    try {
      return walk(join(root, d), []);
    } catch {
      return [];
    }
  })
  .filter((f) => long === f.endsWith(".long.test.ts"))
  .filter((f) => filters.length === 0 || filters.some((flt) => f.includes(flt)))
  .sort();

if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}

// The whole suite starts with the type check and lint (Biome, then the layer check of
// docs/architecture.md), so that `npm test` is the one gate CI runs.
if (filters.length === 0 && !long) {
  const bin = (name) => join(root, "node_modules", ".bin", name);
  for (const [cmd, cmdArgs] of [
    [bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]],
    [bin("biome"), ["check", "."]],
    [process.execPath, ["--import", "tsx", "scripts/check-layers.ts"]],
  ]) {
    console.log(`> ${relative(root, cmd) || cmd} ${cmdArgs.join(" ")}`);
    const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: "inherit" });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}

// Starting a process and loading its modules through tsx costs about a second, more than most
// test files take to run. So the files of one folder share a process (at most GROUP_SIZE each):
// a generated entry imports them one at a time, each inside a suite named after it, the next
// only once the last one's tests are done (so a file's top-level hooks and set-up stay its own).
// A file that changes process-wide state (environment, globals, process listeners, mocked
// timers) or says `// test: own process` keeps a process of its own.
const GROUP_SIZE = 15;
const OWN_PROCESS =
  /\/\/ test: own process|mock\.timers|process\.(on|once|chdir)\(|process\.env\.\w+\s*=[^=]|globalThis\.\w+\s*=[^=]/;
const groupsDir = join(root, "node_modules", ".cache", "keyroom-test-groups");
mkdirSync(groupsDir, { recursive: true });
const entriesDir = mkdtempSync(join(groupsDir, "run-"));
const groups = new Map();
const entries = [];
for (const file of files) {
  if (OWN_PROCESS.test(readFileSync(join(root, file), "utf8"))) {
    entries.push(file);
    continue;
  }
  const folder = dirname(file);
  const group = groups.get(folder) ?? [];
  group.push(file);
  groups.set(folder, group);
}
for (const [folder, group] of groups) {
  if (group.length === 1) {
    entries.push(group[0]);
    continue;
  }
  for (let i = 0; i < group.length; i += GROUP_SIZE) {
    const part = group.slice(i, i + GROUP_SIZE).map((f) => [f, pathToFileURL(join(root, f)).href]);
    const entry = join(entriesDir, `${folder.replaceAll("/", "~")}~${i / GROUP_SIZE}.test.mjs`);
    writeFileSync(
      entry,
      `import { after, describe } from "node:test";
for (const [name, url] of ${JSON.stringify(part)}) {
  await new Promise((done) => {
    describe(name, async () => {
      after(done);
      try {
        await import(url);
      } catch (e) {
        done();
        throw e;
      }
    });
  });
}
`,
    );
    entries.push(entry);
  }
}
// The long integration folders first, so that the two workers finish together.
const weight = (entry) => (/(^|[~/])test[~/](e2e|crash|browser|package)/.test(entry) ? 0 : 1);
entries.sort((a, b) => weight(a) - weight(b));

const result = spawnSync(
  process.execPath,
  [
    "--conditions=source",
    "--import",
    "tsx",
    "--import",
    new URL("../test/support/fast-check-seed.mjs", import.meta.url).href,
    "--test",
    "--test-concurrency=2",
    "--test-reporter=spec",
    ...entries,
  ],
  { cwd: root, stdio: "inherit", env: { ...process.env, KEYROOM_TEST: "1" } },
);
rmSync(entriesDir, { recursive: true, force: true });
process.exit(result.status ?? 1);
