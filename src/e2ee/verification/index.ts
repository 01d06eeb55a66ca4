export { type VerificationAction, VerificationApi } from "./api.ts";
export type { VerificationRoomMessage, VerificationUpdates } from "./bridge.ts";
export * from "./constants.ts";
export type { VerificationEnv, VerifiedKeys } from "./env.ts";
export { VerificationError, type VerificationErrorCode } from "./errors.ts";
export {
  isVerificationEvent,
  type VerificationMessage,
  type VerificationRoomEvent,
  type VerificationToDeviceEvent,
} from "./events.ts";
export type { FlowPhase, VerificationSnapshot } from "./flow.ts";
export { VerificationMachine } from "./machine.ts";
export { decodeQrCode, encodeQrCode, type QrCodeData, type QrMode } from "./qr-code.ts";
export { keyIdList, macInfo, sasCommitment, sasInfo } from "./sas-crypto.ts";
export type { SasStage } from "./sas-flow.ts";
