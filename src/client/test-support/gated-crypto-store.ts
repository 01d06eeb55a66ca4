// A crypto store factory held shut: for tests of what a client does while its encryption starts
// (the store being opened: a slow disk, a passphrase prompt).
import type { CryptoStoreFactory } from "../encryption/options.ts";

/** `open`, held until `release()`; `opened` resolves once the client asked for the store. */
export function gatedCryptoStore(open: CryptoStoreFactory): {
  factory: CryptoStoreFactory;
  opened: Promise<void>;
  release: () => void;
} {
  let release = (): void => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let opening = (): void => undefined;
  const opened = new Promise<void>((resolve) => {
    opening = resolve;
  });
  const factory: CryptoStoreFactory = async (account) => {
    opening();
    await gate;
    return open(account);
  };
  return { factory, opened, release };
}
