/**
 * What the verification machine needs to know about keys, handed in by its driver for each step
 * (the machine reads no store and does no I/O). Lookups are synchronous over what the driver
 * fetched before the step.
 */
export interface VerificationEnv {
  readonly userId: string;
  readonly deviceId: string;
  /** Our device's Ed25519 key. */
  readonly ed25519: string;
  /** The Ed25519 key of a device we know (from `/keys/query`), or undefined. */
  deviceKey(userId: string, deviceId: string): string | undefined;
  /** A user's cross-signing master key, if known. */
  masterKey(userId: string): string | undefined;
  /** Whether this device trusts our own master key (needed to show QR mode 0x01). */
  readonly ownMasterTrusted: boolean;
}

/** What a finished verification proved. */
export interface VerifiedKeys {
  readonly devices: readonly {
    readonly userId: string;
    readonly deviceId: string;
    readonly ed25519: string;
  }[];
  readonly masterKeys: readonly { readonly userId: string; readonly key: string }[];
}
