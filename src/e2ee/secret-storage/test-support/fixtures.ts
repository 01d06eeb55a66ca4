// Account data from mautrix-python's published SSSS vectors (test/vectors/secret-storage), as a
// client would hold it: the default key, two key descriptions and the encrypted master key.
import { readFileSync } from "node:fs";
import { SecretStorageError } from "../../../crypto/secret-storage/index.ts";
import { CROSS_SIGNING_MASTER_SECRET, DEFAULT_KEY_TYPE, keyType } from "../names.ts";

interface Mautrix {
  key1: { key_id: string; recovery_key: string; passphrase: string; content: Record<string, unknown> };
  key2: { key_id: string; recovery_key: string; content: Record<string, unknown> };
  key2_broken_iv: Record<string, unknown>;
  cross_signing_master: {
    content: { encrypted: Record<string, Record<string, string>> };
    decrypted_key_hex: string;
  };
}

export const mautrix = (
  JSON.parse(
    readFileSync(new URL("../../../../test/vectors/secret-storage/published.json", import.meta.url), "utf8"),
  ) as { mautrix: Mautrix }
).mautrix;

/** Account data with key 1 as default and the master key stored under it. */
export function mautrixAccountData(): Map<string, unknown> {
  return new Map<string, unknown>([
    [DEFAULT_KEY_TYPE, { key: mautrix.key1.key_id }],
    [keyType(mautrix.key1.key_id), mautrix.key1.content],
    [keyType(mautrix.key2.key_id), mautrix.key2.content],
    [CROSS_SIGNING_MASTER_SECRET, mautrix.cross_signing_master.content],
  ]);
}

export function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SecretStorageError) return e.code;
    if (e instanceof Error && "code" in e) return `${e.name}:${String(e.code)}`;
    throw e;
  }
  return "no error";
}
