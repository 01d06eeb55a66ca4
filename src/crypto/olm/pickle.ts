/** Olm's pickle field readers: the shared ones, failing with `OlmError("BAD_PICKLE")`. */
import { pickleFieldReaders } from "../pickle-fields.ts";
import { OlmError } from "./errors.ts";

export type { PickleObject } from "../pickle-fields.ts";

const read = pickleFieldReaders((message) => new OlmError("BAD_PICKLE", message));

export const badPickle = read.bad;
export const pickleObject = read.object;
export const pickleArray = read.array;
export const pickleVersion = read.version;
export const pickleBytes = read.bytes;
export const pickleInteger = read.integer;
export const pickleBoolean = read.boolean;
