/**
 * `keyroom/crypto`: the cryptographic layer on its own — primitives, canonical/signed JSON, Olm,
 * Megolm, backup PK encryption, SAS, encrypted attachments, key export files, recovery keys and
 * secret storage. No I/O.
 */
export * from "./attachments/index.ts";
export * from "./backup/index.ts";
export * from "./json/index.ts";
export * from "./key-export/index.ts";
export * from "./megolm/index.ts";
export {
  DEHYDRATED_DEVICE_ALGORITHM,
  DEHYDRATED_DEVICE_PICKLE_VERSION,
  type DehydratedDevicePickle,
  fromDehydratedDevice,
  toDehydratedDevice,
} from "./olm/account/dehydrated-device.ts";
export * from "./olm/index.ts";
export * from "./pk/index.ts";
export * as primitives from "./primitives/public.ts";
export * from "./recovery-key/index.ts";
export * from "./sas/index.ts";
export * from "./secret-storage/index.ts";
