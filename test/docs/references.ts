// What the docs consistency test reads: the Markdown files' code spans, links and headings, the
// numeric constants defined in the code, and the names each package entry point exports.
// Plain text parsing, no TypeScript compiler, so the test stays well under a second.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";

export const ROOT = new URL("../..", import.meta.url).pathname;

/** The folders a path written in the docs may start with; such a path is relative to the repository. */
export const REPO_FOLDERS = ["src", "test", "bench", "examples", "docs", "scripts"] as const;

/** One Markdown file split into what the checks read. */
export interface MarkdownFile {
  /** Repository-relative path, e.g. `docs/e2ee.md`. */
  path: string;
  text: string;
  /** Inline code spans and fenced code blocks, each with the line it starts on. */
  code: { text: string; line: number; fenced: boolean }[];
  /** Link targets (`[text](target)`), each with its line. */
  links: { target: string; line: number }[];
  /** The heading anchors GitHub gives the file. */
  anchors: Set<string>;
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function slug(heading: string, seen: Map<string, number>): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/`/g, "")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
  const count = seen.get(text) ?? 0;
  seen.set(text, count + 1);
  return count === 0 ? text : `${text}-${count}`;
}

export function readMarkdown(path: string): MarkdownFile {
  const text = readFileSync(join(ROOT, path), "utf8");
  const code: MarkdownFile["code"] = [];
  const links: MarkdownFile["links"] = [];
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  // Fenced blocks first; prose is what is left with them blanked out (same offsets).
  let prose = text;
  for (const m of text.matchAll(/^(```|~~~)[^\n]*\n([\s\S]*?)^\1[ \t]*$/gm)) {
    code.push({ text: m[2] ?? "", line: lineAt(text, m.index), fenced: true });
    prose = prose.slice(0, m.index) + m[0].replace(/[^\n]/g, " ") + prose.slice(m.index + m[0].length);
  }
  for (const m of prose.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) anchors.add(slug(m[1] ?? "", seen));
  for (const m of prose.matchAll(/(`+)([^`][\s\S]*?)\1(?!`)/g)) {
    code.push({ text: m[2] ?? "", line: lineAt(text, m.index), fenced: false });
  }
  // Links outside code spans: blank the spans out too.
  const linkText = prose.replace(/(`+)([^`][\s\S]*?)\1(?!`)/g, (s) => s.replace(/[^\n]/g, " "));
  for (const m of linkText.matchAll(/\]\(([^()\s]+)(?:\s+"[^"]*")?\)/g)) {
    links.push({ target: m[1] ?? "", line: lineAt(text, m.index) });
  }
  return { path, text, code, links, anchors };
}

/** README.md, the docs and the other folders' READMEs. */
export function markdownFiles(): string[] {
  const docs = readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`);
  const readmes = [
    "bench/README.md",
    "src/devserver/README.md",
    "test/crash/README.md",
    "test/support/peers/README.md",
  ];
  return ["README.md", ...readmes.filter((f) => existsSync(join(ROOT, f))), ...docs];
}

/** Every file under the code folders (no node_modules, dist or dot folders), repository-relative. */
export function repoFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(ROOT, dir))) {
      if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
      const path = `${dir}/${name}`;
      if (statSync(join(ROOT, path)).isDirectory()) walk(path);
      else out.push(path);
    }
  };
  for (const dir of REPO_FOLDERS) if (existsSync(join(ROOT, dir))) walk(dir);
  return out;
}

/** Repository paths named in a piece of code: `src/…`, `test/…`, … (globs and placeholders skipped). */
export function pathsIn(code: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`(?:^|[\\s(\`'"=])((?:${REPO_FOLDERS.join("|")})/[^\\s\`'"()<>,;]*)`, "g");
  for (const m of code.matchAll(re)) {
    const path = (m[1] ?? "").replace(/:\d+(?::\d+)?$/, "").replace(/[.:]+$/, "");
    if (/[*{}[\]…$]|\.\.\./.test(path)) continue;
    out.push(path);
  }
  return out;
}

/**
 * Whether a repository path exists (a folder may be written with or without its trailing slash).
 * What an install makes (`node_modules`) is taken on trust: a clean checkout has not made it yet.
 */
export function pathExists(path: string): boolean {
  return path.split("/").includes("node_modules") || existsSync(join(ROOT, path));
}

/** A relative link target, resolved from the Markdown file that holds it. */
export function resolveLink(from: string, target: string): { file: string; anchor?: string } {
  const hash = target.indexOf("#");
  const file = hash < 0 ? target : target.slice(0, hash);
  const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const resolved = file === "" ? from : relative(ROOT, join(ROOT, dirname(from), decodeURIComponent(file)));
  return anchor === undefined ? { file: resolved } : { file: resolved, anchor };
}

// ---- Constants ----

/** Evaluates `1_000`, `64 * 1024`, `1 << 20`, `0xffff_ffff`, `255 * SHA256_LENGTH`; else undefined. */
export function evaluate(expr: string, known: ReadonlyMap<string, number>): number | undefined {
  const token = /\s*(0x[0-9a-fA-F_]+|\d[\d_]*(?:\.\d+)?(?:e\d+)?|[A-Z][A-Z0-9_]*|\*\*|<<|>>|[-+*/%()])/y;
  let js = "";
  let pos = 0;
  const src = expr.trim();
  while (pos < src.length) {
    token.lastIndex = pos;
    const m = token.exec(src);
    if (m === null) return undefined;
    pos = token.lastIndex;
    const t = m[1] ?? "";
    if (/^[A-Z]/.test(t)) {
      const v = known.get(t);
      if (v === undefined) return undefined;
      js += `(${v})`;
    } else js += t.replace(/_/g, "");
  }
  if (js === "") return undefined;
  // Only number literals, parentheses and arithmetic operators reach this point.
  const value: unknown = new Function(`return (${js});`)();
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/** `const NAME = <number expression>;` in the code (exported or not), each name with its values. */
export function numericConstants(files: readonly string[]): Map<string, Set<number>> {
  const raw: [string, string][] = [];
  for (const file of files) {
    if (!/\.(ts|mjs)$/.test(file)) continue;
    const text = readFileSync(join(ROOT, file), "utf8");
    for (const m of text.matchAll(/\bconst\s+([A-Z][A-Z0-9_]+)\s*(?::\s*number\s*)?=\s*([^;\n]+);/g)) {
      raw.push([m[1] ?? "", m[2] ?? ""]);
    }
  }
  const single = new Map<string, number>();
  const out = new Map<string, Set<number>>();
  // Names defined from other names resolve over a few passes.
  for (let pass = 0; pass < 4; pass++) {
    for (const [name, expr] of raw) {
      const v = evaluate(expr, single);
      if (v === undefined) continue;
      if (!single.has(name)) single.set(name, v);
      const set = out.get(name) ?? new Set<number>();
      set.add(v);
      out.set(name, set);
    }
  }
  return out;
}

const UNITS: Record<string, number> = {
  Ki: 1024,
  KiB: 1024,
  MiB: 1024 * 1024,
  million: 1_000_000,
};
const TIME_UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  min: 60_000,
  h: 3_600_000,
  second: 1000,
  seconds: 1000,
  minute: 60_000,
  minutes: 60_000,
  hour: 3_600_000,
  hours: 3_600_000,
  day: 86_400_000,
  days: 86_400_000,
};

/**
 * The values a doc may mean for a constant, from what follows "`NAME` (", "`NAME` = ", "`NAME`, " or
 * "`NAME` ": "1 000", "65 536", "64 KiB", "10 million", "24 hours" for a `_MS` name, "151 KB" (1000 or
 * 1024 bytes a KB; browser bundle budgets, `_GZIP`, are written in KB without the unit). Empty when it
 * is none of those forms.
 */
export function documentedValue(name: string, after: string): number[] {
  const m = /^(\d{1,3}(?:[ \u00a0\u202f_,]\d{3})+(?![\d.])|\d+(?:\.\d+)?)(?:[ \u00a0]?([A-Za-z%]+))?/.exec(
    after,
  );
  if (m === null) return [];
  const n = Number((m[1] ?? "").replace(/[ \u00a0\u202f_,]/g, ""));
  const unit = m[2];
  if (unit === "KB") return [n * 1000, n * 1024];
  if (unit === undefined || !(unit in UNITS || unit in TIME_UNITS_MS || /^(MB|GB|B|%)$/.test(unit))) {
    // No unit, or another word ("1 000 users"): a plain count.
    return name.endsWith("_GZIP") ? [n * 1000, n * 1024] : [n];
  }
  const factor = UNITS[unit];
  if (factor !== undefined) return [n * factor];
  const ms = TIME_UNITS_MS[unit];
  return ms !== undefined && name.endsWith("_MS") ? [n * ms] : [];
}

/**
 * Each "`NAME` (value", "`NAME` = value", "`NAME`, value" or "`NAME` value" in a Markdown text, and
 * each table row "| `NAME` | value |".
 */
export function documentedConstants(text: string): { name: string; after: string; line: number }[] {
  const out: { name: string; after: string; line: number }[] = [];
  for (const m of text.matchAll(/`([A-Z][A-Z0-9_]{2,})`(?: \(| = |, | (?=\d))([^\n]{0,40})/g)) {
    out.push({ name: m[1] ?? "", after: m[2] ?? "", line: lineAt(text, m.index) });
  }
  for (const m of text.matchAll(/^\|\s*`([A-Z][A-Z0-9_]{2,})`\s*\|\s*([^|\n]*)\|/gm)) {
    out.push({ name: m[1] ?? "", after: (m[2] ?? "").trim(), line: lineAt(text, m.index) });
  }
  return out;
}

// ---- Exported names ----

const exportCache = new Map<string, Set<string>>();

/** The names a module exports, following `export *` and `export { … } from` by their text. */
export function exportedNames(file: string): Set<string> {
  const cached = exportCache.get(file);
  if (cached !== undefined) return cached;
  const names = new Set<string>();
  exportCache.set(file, names);
  const text = readFileSync(join(ROOT, file), "utf8").replace(/^\s*\/\/.*$/gm, "");
  const dir = dirname(file);
  for (const m of text.matchAll(/export\s+\*\s+from\s+["'](\.[^"']+)["']/g)) {
    for (const n of exportedNames(join(dir, m[1] ?? ""))) if (n !== "default") names.add(n);
  }
  for (const m of text.matchAll(/export\s+\*\s+as\s+(\w+)\s+from/g)) names.add(m[1] ?? "");
  for (const m of text.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const part of (m[1] ?? "").split(",")) {
      const words = part
        .trim()
        .replace(/^type\s+/, "")
        .split(/\s+as\s+/);
      const name = (words[1] ?? words[0] ?? "").trim();
      if (name !== "") names.add(name);
    }
  }
  const decl =
    /export\s+(?:declare\s+)?(?:default\s+)?(?:async\s+)?(?:abstract\s+)?(?:const|let|var|function\*?|class|type|interface|enum|namespace)\s+(\w+)/g;
  for (const m of text.matchAll(decl)) names.add(m[1] ?? "");
  return names;
}

/** The source file of a package specifier (`keyroom`, `keyroom/crypto`, …), from package.json's exports. */
export function entryFile(specifier: string): string | undefined {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    name: string;
    exports: Record<string, unknown>;
  };
  if (specifier !== pkg.name && !specifier.startsWith(`${pkg.name}/`)) return undefined;
  const entry = pkg.exports[`.${specifier.slice(pkg.name.length)}`];
  if (typeof entry !== "object" || entry === null) return undefined;
  const source = (entry as Record<string, unknown>).source;
  const path =
    typeof source === "string"
      ? source
      : typeof source === "object" && source !== null
        ? (source as Record<string, unknown>).node
        : undefined;
  return typeof path === "string" ? path.replace(/^\.\//, "") : undefined;
}

/** Each `import { a, b } from "keyroom…"` in a text (code blocks and spans), with its names. */
export function packageImports(text: string): { specifier: string; names: string[]; line: number }[] {
  const out: { specifier: string; names: string[]; line: number }[] = [];
  for (const m of text.matchAll(
    /import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*["'](keyroom(?:\/[^"']*)?)["']/g,
  )) {
    const names = (m[1] ?? "")
      .split(",")
      .map((p) =>
        (
          p
            .trim()
            .replace(/^type\s+/, "")
            .split(/\s+as\s+/)[0] ?? ""
        ).trim(),
      )
      .filter((n) => n !== "");
    out.push({ specifier: m[2] ?? "", names, line: lineAt(text, m.index) });
  }
  return out;
}

/** Every name each package entry point exports (`keyroom`, `keyroom/crypto`, …), together. */
export function allExportedNames(): Set<string> {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    name: string;
    exports: Record<string, unknown>;
  };
  const out = new Set<string>();
  for (const key of Object.keys(pkg.exports)) {
    const entry = entryFile(`${pkg.name}${key.slice(1)}`);
    if (entry?.endsWith(".ts")) for (const n of exportedNames(entry)) out.add(n);
  }
  return out;
}

/** The identifiers of the code folders' source files, as one set of words. */
export function codeWords(files: readonly string[]): Set<string> {
  const words = new Set<string>();
  for (const f of files) {
    if (!/\.(ts|mjs|js)$/.test(f)) continue;
    for (const w of readFileSync(join(ROOT, f), "utf8").match(/[A-Za-z_$][\w$]*/g) ?? []) words.add(w);
  }
  return words;
}

/**
 * The rows of docs/security.md's bounds table: the constants the first cell names (outside
 * parentheses, which name others in passing) and the source files the row names, a bare file name
 * (`sharing.ts`) being in the folder of the path before it.
 */
export function boundsRows(text: string): { names: string[]; files: string[]; line: number }[] {
  const start = text.indexOf("## Bounds on attacker-driven collections");
  if (start < 0) return [];
  const end = text.indexOf("\n## ", start + 1);
  const out: { names: string[]; files: string[]; line: number }[] = [];
  const section = text.slice(start, end < 0 ? undefined : end);
  let offset = start;
  for (const row of section.split("\n")) {
    const line = lineAt(text, offset);
    offset += row.length + 1;
    if (!row.startsWith("| `")) continue;
    let first = row.slice(1, row.indexOf(" | "));
    for (let prev = ""; prev !== first; ) {
      prev = first;
      first = first.replace(/\([^()]*\)/g, "");
    }
    const names = [...first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] ?? "");
    const files: string[] = [];
    let dir = "";
    for (const m of row.matchAll(/`((?:src\/)?[\w./-]+\.ts)`/g)) {
      const path = m[1] ?? "";
      if (path.startsWith("src/")) dir = dirname(path);
      if (path.startsWith("src/")) files.push(path);
      else if (dir !== "") files.push(`${dir}/${path}`);
    }
    out.push({ names, files, line });
  }
  return out;
}
