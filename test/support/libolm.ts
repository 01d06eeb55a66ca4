// Loads libolm (the C reference implementation compiled to wasm) as an interop peer for tests.
// First choice: npm `@towns-protocol/olm` (libolm 3.2.x). Fallback: Debian's `libjs-olm`
// (/usr/share/javascript/olm/olm.js), which on Node needs the wasm bytes handed in.
// Returns null when neither is available, so that callers can print a loud SKIPPED line.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { OlmImpl } from "@towns-protocol/olm";

export type Libolm = OlmImpl;

const DEBIAN_OLM_JS = "/usr/share/javascript/olm/olm.js";
const DEBIAN_OLM_WASM = "/usr/share/javascript/olm/olm.wasm";

interface DebianOlm extends OlmImpl {
  init(opts: { wasmBinary: Uint8Array }): Promise<void>;
}

let loading: Promise<Libolm | null> | undefined;

async function loadNpm(): Promise<Libolm | null> {
  try {
    const mod = await import("@towns-protocol/olm");
    return await mod.default.initAsync();
  } catch {
    return null;
  }
}

async function loadDebian(): Promise<Libolm | null> {
  try {
    const require = createRequire(import.meta.url);
    const olm = require(DEBIAN_OLM_JS) as DebianOlm;
    await olm.init({ wasmBinary: readFileSync(DEBIAN_OLM_WASM) });
    return olm;
  } catch {
    return null;
  }
}

/** The initialised libolm namespace, or null if no build of libolm can be loaded here. */
export async function loadLibolm(): Promise<Libolm | null> {
  loading ??= (async () => (await loadNpm()) ?? (await loadDebian()))();
  return loading;
}

/** Which libolm build `loadLibolm` would use, forcing the Debian one (for tests of the loader). */
export async function loadDebianLibolm(): Promise<Libolm | null> {
  return loadDebian();
}
