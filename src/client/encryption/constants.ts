// Constants of the encryption features that the client's entry exports, apart from the features
// themselves (key backup, dehydration), which are loaded with the engine (see session.ts).

/** The account data (spec v1.19, MSC4287) saying whether the user wants key backup. */
export const KEY_BACKUP_ACCOUNT_DATA = "m.key_backup";
/**
 * The same choice under its older, unstable name (`{ "disabled": true }` when the user turned
 * backup off), which Element Web wrote and matrix-rust-sdk still reads and writes; read only when
 * `m.key_backup` does not say.
 */
export const LEGACY_BACKUP_DISABLED_ACCOUNT_DATA = "m.org.matrix.custom.backup_disabled";

/** The secret storage name of the dehydration key (MSC3814's unstable `org.matrix.msc3814`). */
export const DEHYDRATION_SECRET_NAME = "org.matrix.msc3814";
/** How often a running schedule replaces the dehydrated device by default: weekly. */
export const DEFAULT_DEHYDRATION_PERIOD_MS = 7 * 24 * 60 * 60 * 1000;
/** The shortest period a schedule accepts (each rotation uploads 50 one-time keys). */
export const MIN_DEHYDRATION_PERIOD_MS = 60 * 1000;
export const DEHYDRATED_DEVICE_DISPLAY_NAME = "Dehydrated device";
