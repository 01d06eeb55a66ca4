// The docs say what the code is: every repository path they name exists, every constant they give
// with its value has that value in the code, every relative link (and its #anchor) leads somewhere,
// and every name a code sample imports from the package is exported there.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  allExportedNames,
  boundsRows,
  codeWords,
  documentedConstants,
  documentedValue,
  entryFile,
  exportedNames,
  type MarkdownFile,
  markdownFiles,
  numericConstants,
  packageImports,
  pathExists,
  pathsIn,
  ROOT,
  readMarkdown,
  repoFiles,
  resolveLink,
} from "./references.ts";

const docs: MarkdownFile[] = markdownFiles().map(readMarkdown);
const files = repoFiles();

/** File names written alone (`machine-parts.ts`) that are examples, not files of this repository. */
/** `Class.member`s of other SDKs whose class has a namesake here (matrix-sdk-crypto-wasm's `OlmMachine`). */
const OTHER_SDKS_MEMBERS = new Set(["OlmMachine.encryptExportedRoomKeys"]);
const ILLUSTRATIVE_FILES = new Set(["foo.ts", "foo.test.ts", "x.ts", "my-skill.ts"]);

function report(problems: string[]): void {
  assert.deepEqual(problems, [], `\n${problems.join("\n")}`);
}

test("every repository path the docs name exists", () => {
  const problems: string[] = [];
  for (const doc of docs) {
    for (const span of doc.code) {
      for (const path of pathsIn(span.text)) {
        // A path may also be a test filter (`npm test -- test/crash/kill-loop`): the start of one.
        if (!pathExists(path) && !files.some((f) => f.startsWith(path))) {
          problems.push(`${doc.path}:${span.line}: no ${path}`);
        }
      }
    }
  }
  report(problems);
});

test("every source file the docs name alone (`client.ts`, `platform/node.ts`) exists somewhere", () => {
  const problems: string[] = [];
  for (const doc of docs) {
    for (const span of doc.code) {
      if (span.fenced) continue;
      const name = span.text.trim();
      if (!/^[\w.-]+(?:\/[\w.-]+)*\.(?:ts|mjs)$/.test(name) || ILLUSTRATIVE_FILES.has(name)) continue;
      if (/^(?:src|test|bench|examples|docs|scripts)\//.test(name)) continue; // the test above
      if (!files.some((f) => f.endsWith(`/${name}`)))
        problems.push(`${doc.path}:${span.line}: no file ends in /${name}`);
    }
  }
  report(problems);
});

test("every relative link and #anchor leads somewhere", () => {
  const byPath = new Map(docs.map((d) => [d.path, d]));
  const problems: string[] = [];
  for (const doc of docs) {
    for (const { target, line } of doc.links) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, …
      const { file, anchor } = resolveLink(doc.path, target);
      if (!pathExists(file)) {
        problems.push(`${doc.path}:${line}: no ${file}`);
        continue;
      }
      if (anchor === undefined || anchor === "" || !file.endsWith(".md")) continue;
      const linked = byPath.get(file) ?? readMarkdown(file);
      if (!linked.anchors.has(anchor)) problems.push(`${doc.path}:${line}: no #${anchor} in ${file}`);
    }
  }
  report(problems);
});

test("every constant given with its value in the docs has that value in the code", () => {
  const constants = numericConstants(files);
  assert.ok(constants.size > 100, "the constants of the code were read");
  const problems: string[] = [];
  for (const doc of docs) {
    for (const { name, after, line } of documentedConstants(doc.text)) {
      const values = documentedValue(name, after);
      if (values.length === 0) continue;
      const value = values.at(-1);
      const actual = constants.get(name);
      if (actual === undefined) {
        // An ALL_CAPS name given a number but defined nowhere: renamed, removed, or an env variable.
        if (!/^KEYROOM_/.test(name))
          problems.push(`${doc.path}:${line}: ${name} (${value}) is defined nowhere`);
        continue;
      }
      if (!values.some((v) => actual.has(v))) {
        problems.push(
          `${doc.path}:${line}: ${name} is ${[...actual].join(" or ")} in the code, ${value} in the docs`,
        );
      }
    }
  }
  report(problems);
});

test("every name a doc imports from the package is exported by that entry point", () => {
  const problems: string[] = [];
  for (const doc of docs) {
    for (const { specifier, names, line } of packageImports(doc.text)) {
      const entry = entryFile(specifier);
      if (entry === undefined) {
        problems.push(`${doc.path}:${line}: no package entry ${specifier}`);
        continue;
      }
      const exported = exportedNames(entry);
      for (const name of names) {
        if (!exported.has(name)) problems.push(`${doc.path}:${line}: ${specifier} exports no ${name}`);
      }
    }
  }
  report(problems);
});

test("every `Class.member` the docs name is in the file that defines the class", () => {
  const source = new Map<string, string>();
  for (const f of files) {
    if (f.startsWith("src/") && f.endsWith(".ts") && !f.endsWith(".test.ts")) {
      source.set(f, readFileSync(join(ROOT, f), "utf8"));
    }
  }
  const classFile = new Map<string, string[]>();
  for (const [f, text] of source) {
    for (const m of text.matchAll(/^export\s+(?:abstract\s+)?class\s+(\w+)/gm)) {
      classFile.set(m[1] ?? "", [...(classFile.get(m[1] ?? "") ?? []), f]);
    }
  }
  const problems: string[] = [];
  for (const doc of docs) {
    for (const span of doc.code) {
      if (span.fenced) continue;
      const m = /^([A-Z]\w*)\.([a-z]\w*)(?:\(|$)/.exec(span.text.trim());
      if (m === null) continue;
      const [, cls = "", member = ""] = m;
      if (OTHER_SDKS_MEMBERS.has(`${cls}.${member}`)) continue;
      const defining = classFile.get(cls);
      if (defining === undefined) continue;
      const re = new RegExp(`\\b${member}\\b`);
      if (!defining.some((f) => re.test(source.get(f) ?? ""))) {
        problems.push(`${doc.path}:${span.line}: ${cls} (${defining.join(", ")}) has no ${member}`);
      }
    }
  }
  report(problems);
});

test("every API name the docs write as code (`client.crypto.recovery`, `MatrixClient.forgetRoom`) is in the code", () => {
  const exported = allExportedNames();
  assert.ok(
    exported.has("MatrixClient") && exported.has("OlmMachine"),
    "the entry points' exports were read",
  );
  const words = codeWords(files);
  const problems: string[] = [];
  for (const doc of docs) {
    for (const span of doc.code) {
      if (span.fenced) continue;
      const m = /^([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)(?:\(.*\))?$/s.exec(span.text.trim());
      if (m === null) continue;
      const parts = (m[1] ?? "").split(".");
      const head = parts[0] ?? "";
      // Only our API: a chain off the client, a package export, or an ALL_CAPS constant or code.
      const ours = head === "client" || exported.has(head) || /^[A-Z][A-Z0-9]*_[A-Z0-9_]+$/.test(head);
      // snake_case is another SDK's name (docs/walkthrough.md) or a wire field, not our API.
      if (!ours || parts.some((p) => /[a-z]_|_[a-z]/.test(p))) continue;
      for (const part of parts) {
        if (!words.has(part))
          problems.push(`${doc.path}:${span.line}: ${span.text.trim()}: no ${part} in the code`);
      }
    }
  }
  report(problems);
});

test("every bound in docs/security.md's table is exported by a file its row names", () => {
  const text = readFileSync(join(ROOT, "docs/security.md"), "utf8");
  const rows = boundsRows(text);
  assert.ok(rows.length > 20, "the bounds table was read");
  const problems: string[] = [];
  for (const { names, files: named, line } of rows) {
    const sources = named.filter(pathExists).map((f) => readFileSync(join(ROOT, f), "utf8"));
    for (const name of names) {
      const re = new RegExp(`export const ${name}\\b`);
      if (!sources.some((s) => re.test(s))) {
        problems.push(`docs/security.md:${line}: ${name} is exported by none of ${named.join(", ")}`);
      }
    }
  }
  report(problems);
});

test("the README links every guide in docs/", () => {
  const readme = docs.find((d) => d.path === "README.md");
  assert.ok(readme !== undefined);
  const linked = new Set(readme.links.map((l) => resolveLink("README.md", l.target).file));
  const missing = docs.filter((d) => d.path.startsWith("docs/") && !linked.has(d.path)).map((d) => d.path);
  assert.deepEqual(missing, [], `README.md links no ${missing.join(", ")}`);
});
