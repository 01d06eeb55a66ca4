// Room events as the client hands them to the application: the engine's result turned into the
// event's type, content and `encryption` info, for events decrypted now or later, or not at all.
import type {
  DecryptedRoomEvent,
  DecryptionError,
  KeysFrom,
  UndecryptableRoomEvent,
} from "../../e2ee/index.ts";
import { type ClientEvent, clientEventSchema, type JsonObject } from "../../wire/index.ts";
import type { EncryptionInfo, RoomEvent } from "../events/types.ts";
import type { DecryptionResult } from "../sync/hooks.ts";
import type { ClientCryptoHost } from "./client-crypto-types.ts";

/** The events the engine hands back after a sync or an import: decrypted now, or failing anew. */
export interface LaterOutcomes {
  readonly decrypted: readonly DecryptedRoomEvent[];
  readonly withheld: readonly UndecryptableRoomEvent[];
}

/** What emitting them needs of the client. */
export type LaterOutcomesHost = Pick<ClientCryptoHost, "getRoom" | "emitDecrypted" | "emitUndecryptable">;

/**
 * Emits events that failed to decrypt earlier: `room.decrypted` for those whose key arrived,
 * `room.undecryptable` for those whose sender said it withheld the key.
 */
export async function emitLaterOutcomes(host: LaterOutcomesHost, later: LaterOutcomes): Promise<void> {
  for (const d of later.decrypted) {
    const room = host.getRoom(d.roomId);
    const event = laterRoomEvent(d.roomId, d.encrypted, (raw) => decryptedParts(d, raw));
    if (room !== undefined && event !== undefined) await host.emitDecrypted(room, event);
  }
  for (const w of later.withheld) {
    const room = host.getRoom(w.roomId);
    const event = laterRoomEvent(w.roomId, w.event, (raw) => ({
      type: raw.type,
      content: raw.content,
      info: encryptionInfo(undecryptable(w.error)),
    }));
    if (room !== undefined && event !== undefined) await host.emitUndecryptable(room, event);
  }
}

/**
 * The timeline event of a refused sender's verification event the engine decrypted late
 * (`OlmMachine.takeLateVerificationEvents`), as it is emitted when decrypted at once: undecryptable,
 * `SENDER_NOT_CROSS_SIGNED` (the flow takes the held event for it); undefined when malformed.
 */
export function refusedLaterEvent(d: DecryptedRoomEvent): RoomEvent | undefined {
  return laterRoomEvent(d.roomId, d.encrypted, (raw) => ({
    type: raw.type,
    content: raw.content,
    info: { decrypted: false, code: "SENDER_NOT_CROSS_SIGNED", reason: REFUSED_SENDER },
  }));
}

const REFUSED_SENDER = "the sending device is not cross-signed by its owner";

/**
 * An event the engine hands back (the event as we passed it: a client event, checked again here),
 * whole, with its type, content and encryption info now; undefined when it is not a client event.
 */
function laterRoomEvent(
  roomId: string,
  encrypted: unknown,
  parts: (raw: ClientEvent) => { type: string; content: JsonObject; info: EncryptionInfo },
): RoomEvent | undefined {
  const parsed = clientEventSchema.safeParse(encrypted);
  if (!parsed.success) return undefined;
  const raw = parsed.data;
  const { type, content, info } = parts(raw);
  const event: RoomEvent = {
    roomId,
    eventId: raw.event_id,
    sender: raw.sender,
    type,
    content,
    originServerTs: raw.origin_server_ts,
    raw,
    encryption: info,
  };
  if (raw.unsigned !== undefined) event.unsigned = raw.unsigned;
  return event;
}

/** The undecryptable result as the event's `encryption`. */
function encryptionInfo(r: Extract<DecryptionResult, { ok: false }>): EncryptionInfo {
  const { code, reason, withheldCode } = r;
  return { decrypted: false, code, reason, ...(withheldCode === undefined ? {} : { withheldCode }) };
}

/** The application-facing parts of a decrypted event; relations stay readable in the clear wrapper. */
export function decryptedParts(
  d: DecryptedRoomEvent,
  raw: ClientEvent,
): { type: string; content: JsonObject; info: Extract<DecryptionResult, { ok: true }>["info"] } {
  const content: JsonObject = { ...d.content };
  const relation = raw.content["m.relates_to"];
  if (content["m.relates_to"] === undefined && relation !== undefined) content["m.relates_to"] = relation;
  return {
    type: d.type,
    content,
    info: {
      decrypted: true,
      senderKey: d.senderCurve25519,
      ...(d.senderDevice !== undefined ? { senderDeviceId: d.senderDevice } : {}),
      trust: d.trust,
      senderCrossSigned: d.senderCrossSigned,
      senderIdentity: d.senderIdentity,
      ...(d.keysFrom !== undefined ? { keysFrom: keysFromInfo(d.keysFrom) } : {}),
    },
  };
}

function keysFromInfo(k: KeysFrom): { userId?: string; deviceId?: string; curve25519: string } {
  return {
    curve25519: k.curve25519,
    ...(k.userId !== undefined ? { userId: k.userId } : {}),
    ...(k.deviceId !== undefined ? { deviceId: k.deviceId } : {}),
  };
}

/** An event the engine could not decrypt, as the client reports it (with the sender's withheld code). */
export function undecryptable(error: DecryptionError): Extract<DecryptionResult, { ok: false }> {
  const { code, message: reason, withheldCode } = error;
  return { ok: false, code, reason, ...(withheldCode === undefined ? {} : { withheldCode }) };
}
