/**
 * Readers for pickle records coming back from storage, shared by Olm and Megolm: each checks one
 * field and throws the module's own typed error (via `fail`) naming the field, never its value.
 */
import { CryptoPrimitiveError, decodeBase64 } from "./primitives/index.ts";

export type PickleObject = { readonly [key: string]: unknown };

export interface PickleFieldReaders {
  /** The error for a missing or malformed field. */
  bad(what: string): Error;
  object(value: unknown, what: string): PickleObject;
  array(value: unknown, what: string, maxLength: number): readonly unknown[];
  version(obj: PickleObject, expected: number, what: string): void;
  /** Unpadded base64 of exactly `length` bytes. */
  bytes(value: unknown, length: number, what: string): Uint8Array;
  integer(value: unknown, max: number, what: string): number;
  boolean(value: unknown, what: string): boolean;
}

export function pickleFieldReaders(fail: (message: string) => Error): PickleFieldReaders {
  const bad = (what: string) => fail(`pickle field ${what} is missing or malformed`);
  return {
    bad,
    object(value, what) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad(what);
      return value as PickleObject;
    },
    array(value, what, maxLength) {
      if (!Array.isArray(value) || value.length > maxLength) throw bad(what);
      return value;
    },
    version(obj, expected, what) {
      if (obj.version !== expected) throw fail(`unsupported ${what} pickle version`);
    },
    bytes(value, length, what) {
      if (typeof value !== "string") throw bad(what);
      let bytes: Uint8Array;
      try {
        bytes = decodeBase64(value);
      } catch (e) {
        if (e instanceof CryptoPrimitiveError) throw bad(what);
        throw e;
      }
      if (bytes.length !== length) throw bad(what);
      return bytes;
    },
    integer(value, max, what) {
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) throw bad(what);
      return value;
    },
    boolean(value, what) {
      if (typeof value !== "boolean") throw bad(what);
      return value;
    },
  };
}
