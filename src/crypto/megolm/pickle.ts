/**
 * Readers for pickle records coming back from storage: each checks one field and throws
 * `MegolmError("BAD_PICKLE")` naming the field (never its value).
 */
import { CryptoPrimitiveError, decodeBase64 } from "../primitives/index.ts";
import { MegolmError } from "./errors.ts";

export type PickleObject = { readonly [key: string]: unknown };

function badPickle(what: string): MegolmError {
  return new MegolmError("BAD_PICKLE", `pickle field ${what} is missing or malformed`);
}

export function pickleObject(value: unknown, expectedVersion: number, what: string): PickleObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw badPickle(what);
  const obj = value as PickleObject;
  if (obj.version !== expectedVersion)
    throw new MegolmError("BAD_PICKLE", `unsupported ${what} pickle version`);
  return obj;
}

/** Unpadded base64 of exactly `length` bytes. */
export function pickleBytes(value: unknown, length: number, what: string): Uint8Array {
  if (typeof value !== "string") throw badPickle(what);
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(value);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError) throw badPickle(what);
    throw e;
  }
  if (bytes.length !== length) throw badPickle(what);
  return bytes;
}

export function pickleInteger(value: unknown, max: number, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max)
    throw badPickle(what);
  return value;
}

export function pickleBoolean(value: unknown, what: string): boolean {
  if (typeof value !== "boolean") throw badPickle(what);
  return value;
}
