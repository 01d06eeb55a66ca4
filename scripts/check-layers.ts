// The layer check (part of `npm run lint` and `npm test`): reads every import in src/ and fails
// when one breaks the layer rules of docs/architecture.md, when protocol code reaches for I/O,
// or when files import each other in a cycle. Test-only files (tests, fixtures, test-support
// folders) are left out: they may reach across layers to set things up.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The layers, lowest first, each with the layers it may import from (itself included). A file
 * belongs to the first layer whose folder holds it.
 */
export interface Layer {
  readonly name: string;
  /** A folder (ending in `/`) or one file. */
  readonly path: string;
  readonly may: readonly string[];
}

export const LAYERS: readonly Layer[] = [
  { name: "primitives", path: "src/crypto/primitives/", may: ["primitives"] },
  { name: "protocols", path: "src/crypto/", may: ["primitives", "protocols"] },
  { name: "wire", path: "src/wire/", may: ["wire"] },
  { name: "store", path: "src/store/", may: ["primitives", "protocols", "wire", "store"] },
  { name: "e2ee", path: "src/e2ee/", may: ["primitives", "protocols", "wire", "store", "e2ee"] },
  {
    name: "client",
    path: "src/client/",
    may: ["primitives", "protocols", "wire", "store", "e2ee", "client"],
  },
  { name: "devserver", path: "src/devserver/", may: ["primitives", "protocols", "wire", "devserver"] },
  {
    name: "package",
    path: "src/index.ts",
    may: ["primitives", "protocols", "wire", "store", "e2ee", "client", "package"],
  },
  {
    name: "package",
    path: "src/browser.ts",
    may: ["primitives", "protocols", "wire", "store", "e2ee", "client"],
  },
  // Appservice mode: virtual users are MatrixClients fed by transactions (public client API,
  // the wire formats of the Application Service API, primitives for the token check, the memory
  // crypto store for throwaway runs).
  {
    name: "appservice",
    path: "src/appservice/",
    may: ["primitives", "wire", "store", "client", "package", "appservice"],
  },
  // The bot framework is built on the public client API (`src/index.ts`, `src/client/`) only;
  // primitives for the webhook secret's constant-time comparison.
  {
    name: "bot-testing",
    path: "src/bot/testing/",
    may: ["primitives", "wire", "client", "package", "devserver", "bot", "bot-testing"],
  },
  // Appservice bots: the bot framework's starts and recovery, for the appservice's user.
  {
    name: "bot-appservice",
    path: "src/bot/appservice/",
    may: ["primitives", "wire", "client", "package", "appservice", "bot", "bot-appservice"],
  },
  { name: "bot", path: "src/bot/", may: ["primitives", "client", "package", "bot"] },
  {
    name: "cli",
    path: "src/cli/",
    may: [
      "primitives",
      "protocols",
      "wire",
      "store",
      "e2ee",
      "client",
      "package",
      "devserver",
      "appservice",
      "bot",
      "bot-appservice",
      "cli",
    ],
  },
];

/** Node built-ins allowed in layers that must do no I/O (the rest of them do none). */
const NO_IO_LAYERS = new Set(["primitives", "protocols", "wire", "e2ee"]);
const ALLOWED_BUILTINS: { readonly [layer: string]: ReadonlySet<string> } = {
  primitives: new Set(["node:crypto"]),
};

/** Package `imports` entries (`#name`) and where they point in src/ (the Node target). */
const PACKAGE_IMPORTS: { readonly [name: string]: string } = {
  "#primitives-backend": "src/crypto/primitives/backend-node.ts",
  "#primitives-symmetric": "src/crypto/primitives/symmetric-node.ts",
  "#primitives-aead": "src/crypto/primitives/aead-node.ts",
  "#client-platform": "src/client/platform/node.ts",
};

export function isTestOnly(file: string): boolean {
  return /\.(test|fixture)\.ts$/.test(file) || file.split("/").includes("test-support");
}

function walk(dir: string, root: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, root, out);
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts"))
      out.push(relative(root, path).split(sep).join("/"));
  }
  return out;
}

// `import … from "x"`, `export … from "x"`, `import "x"` and `import("x")`; comments are blanked first.
const IMPORT =
  /\b(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

export function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of stripComments(text).matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (spec !== undefined) out.push(spec);
  }
  return out;
}

export function layerOf(file: string): Layer | undefined {
  return LAYERS.find((l) => (l.path.endsWith("/") ? file.startsWith(l.path) : file === l.path));
}

/** Every problem in the tree under `root` (its `src/`), as readable lines; empty when all is well. */
export function checkLayers(root: string): string[] {
  const files = walk(join(root, "src"), root, []).filter((f) => !isTestOnly(f));
  const known = new Set(files);
  const problems: string[] = [];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const layer = layerOf(file);
    const edges: string[] = [];
    graph.set(file, edges);
    if (layer === undefined) {
      problems.push(`${file}: in no layer of docs/architecture.md`);
      continue;
    }
    for (const spec of new Set(importsOf(readFileSync(join(root, file), "utf8")))) {
      let target: string;
      if (spec.startsWith(".")) {
        target = relative(root, resolve(root, dirname(file), spec))
          .split(sep)
          .join("/");
      } else if (PACKAGE_IMPORTS[spec] !== undefined) {
        target = PACKAGE_IMPORTS[spec];
      } else if (spec.startsWith("node:")) {
        if (NO_IO_LAYERS.has(layer.name) && !ALLOWED_BUILTINS[layer.name]?.has(spec)) {
          problems.push(`${file}: imports ${spec}, but the ${layer.name} layer does no I/O`);
        }
        continue;
      } else {
        continue; // a package
      }
      if (!target.startsWith("src/")) {
        problems.push(`${file}: imports ${spec}, outside src/`);
        continue;
      }
      if (isTestOnly(target)) {
        problems.push(`${file}: imports the test-only ${target}`);
        continue;
      }
      const to = layerOf(target);
      if (to !== undefined && !layer.may.includes(to.name)) {
        problems.push(`${file}: imports ${target}, but ${layer.name} may not import from ${to.name}`);
      }
      if (known.has(target)) edges.push(target);
    }
  }
  for (const cycle of cyclesOf(graph)) problems.push(`import cycle: ${cycle.join(" → ")}`);
  return problems;
}

/** One cycle per strongly connected component of more than one file (or a file importing itself). */
function cyclesOf(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let next = 0;
  const lowOf = (v: string): number => low.get(v) ?? 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(lowOf(v), lowOf(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(lowOf(v), index.get(w) ?? 0));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string | undefined;
    do {
      w = stack.pop();
      if (w === undefined) break;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v))
      cycles.push(pathIn(graph, new Set(component), v));
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

/** A shortest way from `start` back to itself inside one component, for the message. */
function pathIn(
  graph: ReadonlyMap<string, readonly string[]>,
  members: ReadonlySet<string>,
  start: string,
): string[] {
  const from = new Map<string, string>();
  const queue = [start];
  for (let v = queue.shift(); v !== undefined; v = queue.shift()) {
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u: string | undefined = v; u !== undefined && u !== start; u = from.get(u))
          path.splice(1, 0, u);
        return [...path, start];
      }
      if (!from.has(w) && w !== start) {
        from.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? fileURLToPath(new URL("..", import.meta.url));
  const problems = checkLayers(root);
  for (const p of problems) console.error(p);
  if (problems.length > 0) {
    console.error(`layer check: ${problems.length} problem(s); the rules are in docs/architecture.md`);
    process.exit(1);
  }
  console.log("layer check: imports follow docs/architecture.md, no cycles");
}
