// The contract every interop peer driver implements, so one test can run the same conversation
// between any two real clients (matrix-js-sdk, matrix-nio, and later Keyroom itself).

/** A room message as a peer saw it. */
export interface PeerMessage {
  roomId: string;
  eventId: string;
  sender: string;
  /** The event type after decryption (`m.room.message`); `m.room.encrypted` while undecryptable. */
  type: string;
  /** `content.body`, or undefined while the event cannot be decrypted (or has no body). */
  body: string | undefined;
  /** True when the event arrived encrypted and the peer's own crypto decrypted it. */
  decrypted: boolean;
  /** True when the event arrived as `m.room.encrypted` (whether or not it could be decrypted). */
  encrypted: boolean;
  /** The Megolm session that encrypted it (from the wire content), so tests can see key rotation. */
  sessionId: string | undefined;
}

/** Curve25519 / Ed25519 identity keys of a device, unpadded base64 as on the wire. */
export interface IdentityKeys {
  curve25519: string;
  ed25519: string;
}

export interface CreateRoomOptions {
  /** Adds `m.room.encryption` (`m.megolm.v1.aes-sha2`) to the initial state. */
  encrypted?: boolean;
  /** User IDs to invite. */
  invite?: string[];
  name?: string;
}

export type PeerKind = "js-sdk" | "nio";

export type Membership = "join" | "invite" | "leave";

/**
 * One logged-in device of a real Matrix client under test control.
 *
 * Every `wait*` method rejects with a `PeerError` of code `TIMEOUT` rather than hanging, and
 * `close()` always releases the peer's process, sockets and timers (call it in `finally`/`after`).
 */
export interface Peer {
  readonly kind: PeerKind;
  readonly userId: string;
  readonly deviceId: string;
  identityKeys(): Promise<IdentityKeys>;
  /** Creates a room and resolves once the peer's own sync shows it joined (and encrypted when asked). */
  createRoom(options?: CreateRoomOptions): Promise<string>;
  /** Joins by room ID and resolves once the peer's own sync shows the join. */
  join(roomId: string): Promise<void>;
  /** Invites `userId` to `roomId`. */
  invite(roomId: string, userId: string): Promise<void>;
  /** Leaves `roomId` and resolves once the peer's own sync shows it left. */
  leave(roomId: string): Promise<void>;
  /** Sends `m.text`, encrypted when the room is; resolves with the event ID. */
  sendText(roomId: string, body: string): Promise<string>;
  /** Resolves with the first message in `roomId` (already seen or still to come) matching `predicate`. */
  waitForMessage(
    roomId: string,
    predicate: (m: PeerMessage) => boolean,
    timeoutMs?: number,
  ): Promise<PeerMessage>;
  /** Resolves once this peer's view of `roomId` shows `userId` with `membership`. */
  waitForMembership(
    roomId: string,
    userId: string,
    membership: Membership,
    timeoutMs?: number,
  ): Promise<void>;
  /** The device IDs of `userId` this client currently knows, as its own key queries found them. */
  knownDevices(userId: string): Promise<string[]>;
  /** Resolves once `knownDevices(userId)` satisfies `predicate` (the client learns through its syncs). */
  waitForDevices(
    userId: string,
    predicate: (deviceIds: string[]) => boolean,
    timeoutMs?: number,
  ): Promise<void>;
  /** Logs this device out (the server deletes it, its keys and its to-device queue), then closes the peer. */
  logout(): Promise<void>;
  /** The room keys this device holds, as a standard passphrase-encrypted key export file. */
  exportRoomKeys(passphrase: string): Promise<string>;
  /** Messages of `roomId` this peer has seen so far, oldest first (one entry per event). */
  messages(roomId: string): PeerMessage[];
  /** After the homeserver was unreachable (restarted): resolves once a sync has succeeded again. */
  resumeSync(timeoutMs?: number): Promise<void>;
  /** Imports a standard key export file; events that become decryptable are then reported decrypted. */
  importRoomKeys(data: string, passphrase: string): Promise<void>;
  /** Stops syncing and releases everything. Idempotent. */
  close(): Promise<void>;
}

/** Default for every `timeoutMs`: generous for a loaded 2-core machine, short enough to fail fast. */
export const DEFAULT_PEER_TIMEOUT_MS = 20_000;

/** Matches a message by its body (and, optionally, its sender). */
export function bodyIs(body: string, sender?: string): (m: PeerMessage) => boolean {
  return (m) => m.body === body && (sender === undefined || m.sender === sender);
}
