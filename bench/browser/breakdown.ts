// What each module costs an encrypted session's browser bundle, gzipped: `node --import tsx
// bench/browser/breakdown.ts [initial|session|total] [rows]`. Bundles as the size guard does
// (test/support/browser-bundle.ts: esbuild, code-split, minified), with source maps; each output
// byte is attributed to the source file it came from, and a file's share is what gzip saves when
// its bytes are taken out of its chunk (each chunk gzipped on its own, as served). The shares add
// up to less than the chunks' size: the rest is the chunks' own import/export glue and gzip's
// headers. Prints per package / folder, then per file, largest first.
import { gzipSync } from "node:zlib";
import { build, type Metafile } from "esbuild";
import { BROWSER_BUILD, BROWSER_CLIENT_ENTRY, ENGINE_MODULE } from "../../test/support/browser-bundle.ts";

const root = new URL("../..", import.meta.url).pathname;
const which = (process.argv[2] ?? "session") as "initial" | "session" | "total";
const rows = Number(process.argv[3] ?? 60);

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** A source map's `mappings`, per output line: [column, source index or -1] of each segment. */
function segments(mappings: string): [number, number][][] {
  let source = 0;
  return mappings.split(";").map((line) => {
    let column = 0;
    const out: [number, number][] = [];
    for (const seg of line === "" ? [] : line.split(",")) {
      const fields: number[] = [];
      let value = 0;
      let shift = 0;
      for (const ch of seg) {
        const digit = B64.indexOf(ch);
        value += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      column += fields[0] ?? 0;
      if (fields.length > 1) source += fields[1] ?? 0;
      out.push([column, fields.length > 1 ? source : -1]);
    }
    return out;
  });
}

const r = await build({
  stdin: { contents: BROWSER_CLIENT_ENTRY, resolveDir: root, loader: "ts", sourcefile: "entry.ts" },
  ...BROWSER_BUILD,
  splitting: true,
  outdir: `${root}.bundle-out`,
  entryNames: "entry",
  sourcemap: "external",
});
const base = (p: string): string => p.split("/").pop() ?? p;
const files = new Map(r.outputFiles.map((f) => [base(f.path), f]));
const outputs = new Map(Object.entries(r.metafile.outputs).map(([k, v]) => [base(k), v]));
const named = (pred: (o: Metafile["outputs"][string]) => boolean): string | undefined =>
  [...outputs].find(([, o]) => pred(o))?.[0];
// The chunks loaded with `start`: static imports only, or every import for the total.
const reach = (start: string | undefined, into: Set<string>): Set<string> => {
  if (start === undefined || into.has(start)) return into;
  into.add(start);
  for (const i of outputs.get(start)?.imports ?? []) {
    if (i.kind === "import-statement" || which === "total") reach(base(i.path), into);
  }
  return into;
};
const chunks = reach(
  named((o) => o.entryPoint?.endsWith("entry.ts") === true),
  new Set(),
);
if (which === "session")
  reach(
    named((o) => o.entryPoint === ENGINE_MODULE),
    chunks,
  );

const share = new Map<string, number>();
const minified = new Map<string, number>();
let total = 0;
for (const name of chunks) {
  const js = files.get(name);
  const map = files.get(`${name}.map`);
  if (js === undefined || map === undefined) continue;
  const { sources, mappings } = JSON.parse(map.text) as { sources: string[]; mappings: string };
  const text = js.text.replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n");
  // The source of every output character (-1: glue of the chunk's own).
  const owner = new Int32Array(text.length).fill(-1);
  let lineStart = 0;
  const lines = text.split("\n");
  segments(mappings).forEach((segs, li) => {
    const length = lines[li]?.length ?? 0;
    segs.forEach(([column, source], i) => {
      const end = segs[i + 1]?.[0] ?? length;
      owner.fill(source, lineStart + column, lineStart + end);
    });
    lineStart += length + 1;
  });
  const whole = gzipSync(text).length;
  total += whole;
  for (let s = 0; s < sources.length; s++) {
    let without = "";
    let count = 0;
    for (let i = 0; i < text.length; i++) {
      if (owner[i] === s) count++;
      else without += text[i];
    }
    if (count === 0) continue;
    const file = (sources[s] ?? "?").replace(/^(\.\.\/)+/, "").replace(/^.*?node_modules\//, "node_modules/");
    share.set(file, (share.get(file) ?? 0) + whole - gzipSync(without).length);
    minified.set(file, (minified.get(file) ?? 0) + count);
  }
}

const kb = (n: number): string => (n / 1024).toFixed(2).padStart(6);
const sorted = [...share].sort((a, b) => b[1] - a[1]);
const attributed = sorted.reduce((n, [, v]) => n + v, 0);
console.log(
  `${which}: ${chunks.size} chunks, ${kb(total)} KB gzipped; ${kb(attributed)} KB attributed to modules`,
);
const parts = new Map<string, number>();
for (const [file, n] of sorted) {
  const part = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1] ?? file.split("/").slice(0, 3).join("/");
  parts.set(part, (parts.get(part) ?? 0) + n);
}
console.log("KB gzipped, per package or folder:");
for (const [part, n] of [...parts].sort((a, b) => b[1] - a[1]).slice(0, rows))
  console.log(`${kb(n)}  ${part}`);
console.log("KB gzipped (KB minified), per file:");
for (const [file, n] of sorted.slice(0, rows)) {
  console.log(`${kb(n)} (${kb(minified.get(file) ?? 0)})  ${file}`);
}
