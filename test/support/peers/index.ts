export { PeerError, type PeerErrorCode } from "./errors.ts";
export {
  closePeers,
  loginPeer,
  PEER_KINDS,
  PEER_TEST_TIMEOUT_MS,
  passwordFor,
  registerNewPeer,
  registerPeer,
  skipUnlessAvailable,
  unavailableReason,
  uniqueUsername,
} from "./factory.ts";
export { type BackupSecret, EXPORT_ROUNDS, JsSdkPeer, type JsSdkPeerOptions } from "./jssdk.ts";
export { NIO_REQUEST_TIMEOUT_MS, NioPeer, type NioPeerOptions, type NioSas, redactTokens } from "./nio.ts";
export { encryptedRoom, sendAndDecrypt } from "./scenario.ts";
export {
  bodyIs,
  type CreateRoomOptions,
  DEFAULT_PEER_TIMEOUT_MS,
  type IdentityKeys,
  type Membership,
  type Peer,
  type PeerKind,
  type PeerMessage,
} from "./types.ts";
