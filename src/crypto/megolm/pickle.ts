/** Megolm's pickle field readers: the shared ones, failing with `MegolmError("BAD_PICKLE")`. */
import { type PickleObject, pickleFieldReaders } from "../pickle-fields.ts";
import { MegolmError } from "./errors.ts";

export type { PickleObject } from "../pickle-fields.ts";

const read = pickleFieldReaders((message) => new MegolmError("BAD_PICKLE", message));

/** A pickle record of the expected version. */
export function pickleObject(value: unknown, expectedVersion: number, what: string): PickleObject {
  const obj = read.object(value, what);
  read.version(obj, expectedVersion, what);
  return obj;
}

export const pickleBytes = read.bytes;
export const pickleInteger = read.integer;
export const pickleBoolean = read.boolean;
