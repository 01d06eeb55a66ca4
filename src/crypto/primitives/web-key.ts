/**
 * A non-extractable Web Crypto key (AES-256-GCM) for wrapping a store key in a browser: the key
 * can be kept in IndexedDB (structured clone keeps it non-extractable) and used by script of this
 * origin, but its bytes can never be read back, by us or by script injected into the page.
 *
 * These are the one asynchronous, back-end-independent primitives: Web Crypto exists on Node 20+
 * and in every browser, and its keys are objects of the runtime, not bytes.
 */
import { CryptoPrimitiveError } from "./errors.ts";

const GCM_IV_LENGTH = 12;
const GCM_TAG_LENGTH = 16;

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (s === undefined) throw new CryptoPrimitiveError("UNSUPPORTED", "Web Crypto is not available here");
  return s;
}

/** Whether this runtime has Web Crypto (a secure context in browsers; Node 20+). */
export function webCryptoAvailable(): boolean {
  return globalThis.crypto?.subtle !== undefined;
}

/** A fresh AES-256-GCM key whose bytes cannot be exported. */
export async function generateNonExtractableKey(): Promise<CryptoKey> {
  return subtle().generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** AES-256-GCM under `key`: a random 12-byte IV, then the ciphertext and its 16-byte tag. */
export async function sealWithCryptoKey(key: CryptoKey, plaintext: Uint8Array): Promise<Uint8Array> {
  const iv = new Uint8Array(GCM_IV_LENGTH);
  globalThis.crypto.getRandomValues(iv);
  const copy = new Uint8Array(plaintext); // Web Crypto wants an ArrayBuffer-backed view
  let ct: Uint8Array;
  try {
    ct = new Uint8Array(await subtle().encrypt({ name: "AES-GCM", iv }, key, copy));
  } finally {
    copy.fill(0); // it held a key
  }
  const out = new Uint8Array(GCM_IV_LENGTH + ct.length);
  out.set(iv);
  out.set(ct, GCM_IV_LENGTH);
  return out;
}

/** Opens what `sealWithCryptoKey` sealed; undefined when it does not authenticate under `key`. */
export async function openWithCryptoKey(key: CryptoKey, sealed: Uint8Array): Promise<Uint8Array | undefined> {
  if (sealed.length < GCM_IV_LENGTH + GCM_TAG_LENGTH) return undefined;
  const iv = sealed.slice(0, GCM_IV_LENGTH);
  try {
    return new Uint8Array(await subtle().decrypt({ name: "AES-GCM", iv }, key, sealed.slice(GCM_IV_LENGTH)));
  } catch {
    return undefined;
  }
}
