// Room events as the client hands them to the application: the engine's result turned into the
// event's type, content and `encryption` info, for events decrypted now or later, or not at all.
import type { DecryptedRoomEvent, DecryptionError, KeysFrom } from "../../e2ee/index.ts";
import { type ClientEvent, clientEventSchema, type JsonObject } from "../../wire/index.ts";
import type { RoomEvent } from "../events/types.ts";
import type { DecryptionResult } from "../sync/hooks.ts";

/**
 * An event that failed to decrypt earlier, whole, now that its key arrived; undefined when what
 * the engine hands back (the event as it was passed in) is not a client event.
 */
export function redecryptedRoomEvent(d: DecryptedRoomEvent): RoomEvent | undefined {
  // The engine hands back the event as we passed it: a client event, checked again here.
  const parsed = clientEventSchema.safeParse(d.encrypted);
  if (!parsed.success) return undefined;
  const raw = parsed.data;
  const parts = decryptedParts(d, raw);
  const event: RoomEvent = {
    roomId: d.roomId,
    eventId: raw.event_id,
    sender: raw.sender,
    type: parts.type,
    content: parts.content,
    originServerTs: raw.origin_server_ts,
    raw,
    encryption: parts.info,
  };
  if (raw.unsigned !== undefined) event.unsigned = raw.unsigned;
  return event;
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
