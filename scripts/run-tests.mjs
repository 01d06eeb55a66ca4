#!/usr/bin/env node
// Runs the test suite with Node's test runner over TypeScript sources (through tsx).
// `--long` adds the soak / fuzz / kill-loop tests (files named *.long.test.ts).
// Any other argument is a path filter: `npm test -- olm` runs the files whose path contains "olm".
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

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
    ...files,
  ],
  { cwd: root, stdio: "inherit", env: { ...process.env, KEYROOM_TEST: "1" } },
);
process.exit(result.status ?? 1);
