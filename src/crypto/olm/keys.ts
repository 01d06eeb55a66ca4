/** Curve25519 helpers shared by accounts and sessions, mapping primitive failures to `OlmError`. */
import { CryptoPrimitiveError, decodeBase64, x25519 } from "../primitives/index.ts";
import { OlmError } from "./errors.ts";
import { CURVE25519_KEY_LENGTH } from "./message/message.ts";

/** Decodes an unpadded-base64 Curve25519 public key given by a caller or peer. */
export function decodeCurve25519Key(key: string, what: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(key);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError) throw new OlmError("BAD_KEY", `${what} is not valid base64`);
    throw e;
  }
  if (bytes.length !== CURVE25519_KEY_LENGTH) throw new OlmError("BAD_KEY", `${what} is not 32 bytes`);
  return bytes;
}

/** X25519 with a low-order peer key reported as `OlmError("NON_CONTRIBUTORY_KEY")`. */
export function diffieHellman(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  try {
    return x25519(secretKey, publicKey);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError) {
      throw new OlmError(
        e.code === "NON_CONTRIBUTORY_KEY" ? "NON_CONTRIBUTORY_KEY" : "BAD_KEY",
        "Curve25519 key agreement refused the peer's key",
      );
    }
    throw e;
  }
}

/** Byte equality for public values (keys, IDs); not for secrets. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
