/**
 * Readers for pickle records coming back from storage: each checks one field and throws
 * `OlmError("BAD_PICKLE")` naming the field (never its value).
 */
import { CryptoPrimitiveError, decodeBase64 } from "../primitives/index.ts";
import { OlmError } from "./errors.ts";

export type PickleObject = { readonly [key: string]: unknown };

export function badPickle(what: string): OlmError {
  return new OlmError("BAD_PICKLE", `pickle field ${what} is missing or malformed`);
}

export function pickleObject(value: unknown, what: string): PickleObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw badPickle(what);
  return value as PickleObject;
}

export function pickleArray(value: unknown, what: string, maxLength: number): readonly unknown[] {
  if (!Array.isArray(value) || value.length > maxLength) throw badPickle(what);
  return value;
}

export function pickleVersion(obj: PickleObject, expected: number, what: string): void {
  if (obj.version !== expected) {
    throw new OlmError("BAD_PICKLE", `unsupported ${what} pickle version`);
  }
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
