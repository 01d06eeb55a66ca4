/**
 * The store key of an IndexedDB store: created with the database, unlocked on every open. Without a
 * passphrase or key, a non-extractable Web Crypto key wraps it; that key is kept in the database
 * too (structured clone keeps it non-extractable), so script of the origin can open the store but
 * the store key's bytes never sit in IndexedDB in clear. Runtimes without Web Crypto fall back to
 * the unprotected `"none"` header.
 */
import type { IDBPDatabase } from "idb";
import { generateNonExtractableKey, webCryptoAvailable } from "../../crypto/primitives/symmetric.ts";
import { type KeyProtection, StoreCipher } from "../cipher/store-cipher.ts";
import { StoreKeyError, StoreLockedError } from "../errors.ts";
import type { StoreIdentity } from "../records.ts";

/** Where the wrapping `CryptoKey` of a `"webcrypto"` store lives in the `meta` object store. */
const WRAPPER_KEY = "store_key_wrapper";

export interface StoreKeyOptions {
  readonly passphrase?: string;
  readonly key?: Uint8Array;
  readonly kdfIterations?: number;
}

function isCryptoKey(v: unknown): v is CryptoKey {
  return typeof CryptoKey !== "undefined" && v instanceof CryptoKey;
}

/**
 * The cipher of the store in `db` whose key `header` (undefined for a new store) was read with
 * `identity`, or undefined when another context (a tab, a worker) created the
 * store while this one was preparing to: the caller reads the stored identity again and reopens.
 * A new database gets its key header (and `identity`) written in one transaction that first checks
 * that no header is there yet; the key itself is made before it, since a transaction cannot wait
 * on Web Crypto. Without that check, two contexts opening a new store at once each kept their own
 * key, and one's writes failed authentication in the other.
 */
export async function openStoreCipher(
  db: IDBPDatabase<unknown>,
  options: StoreKeyOptions,
  identity: StoreIdentity,
  header: unknown,
): Promise<StoreCipher | undefined> {
  if (header === undefined) {
    let wrapper: CryptoKey | undefined;
    let protection: KeyProtection;
    if (options.passphrase !== undefined) {
      protection = { kind: "passphrase", passphrase: options.passphrase, iterations: options.kdfIterations };
    } else if (options.key !== undefined) {
      protection = { kind: "key", key: options.key };
    } else if (webCryptoAvailable()) {
      wrapper = await generateNonExtractableKey();
      protection = { kind: "webcrypto", key: wrapper };
    } else {
      protection = { kind: "none" };
    }
    const created = await StoreCipher.create(protection);
    const tx = db.transaction("meta", "readwrite");
    const first = (await tx.store.get("store_key")) === undefined;
    await Promise.all([
      ...(first
        ? [
            tx.store.put(identity, "identity"),
            tx.store.put(created.header, "store_key"),
            ...(wrapper !== undefined ? [tx.store.put(wrapper, WRAPPER_KEY)] : []),
          ]
        : []),
      tx.done,
    ]);
    return first ? created.cipher : undefined;
  }
  if (options.passphrase !== undefined) {
    return StoreCipher.unlock(header, { kind: "passphrase", passphrase: options.passphrase });
  }
  if (options.key !== undefined) return StoreCipher.unlock(header, { kind: "key", key: options.key });
  if (StoreCipher.kindOf(header) === "webcrypto") {
    const wrapper: unknown = await db.get("meta", WRAPPER_KEY);
    if (!isCryptoKey(wrapper)) {
      throw new StoreKeyError("BAD_KEY_PARAMETERS", "the Web Crypto key of this store is missing");
    }
    return StoreCipher.unlock(header, { kind: "webcrypto", key: wrapper });
  }
  return StoreCipher.unlock(header, { kind: "none" });
}

/**
 * Re-wraps the store key of the passphrase-protected store in `db` under `newPassphrase`
 * (`StoreCipher.changePassphrase`: every check happens before the write), then writes the new
 * header in one `meta` transaction that first checks the header is still the one read: it is the
 * only write, so the store opens afterwards with exactly one of the two passphrases. The caller
 * holds the lease. A header changed in between (another context) is `StoreLockedError("STALE")`.
 */
export async function changeStorePassphrase(
  db: IDBPDatabase<unknown>,
  location: string,
  oldPassphrase: string,
  newPassphrase: string,
  iterations: number | undefined,
): Promise<void> {
  const before: unknown = await db.get("meta", "store_key");
  const header = await StoreCipher.changePassphrase(before, oldPassphrase, newPassphrase, iterations);
  const tx = db.transaction("meta", "readwrite", { durability: "strict" });
  const current: unknown = await tx.store.get("store_key");
  if (JSON.stringify(current) !== JSON.stringify(before)) {
    tx.abort();
    await tx.done.catch(() => {});
    throw new StoreLockedError(location, { code: "STALE" });
  }
  await Promise.all([tx.store.put(header, "store_key"), tx.done]);
}
