// Loads matrix-sdk-crypto-wasm (matrix-rust-sdk's crypto on vodozemac, the engine inside matrix-js-sdk) once.
import * as wasm from "@matrix-org/matrix-sdk-crypto-wasm";

let ready: Promise<typeof wasm> | undefined;

export function loadVodozemac(): Promise<typeof wasm> {
  ready ??= wasm.initAsync().then(() => wasm);
  return ready;
}
