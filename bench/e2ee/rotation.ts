// Many Megolm sessions in one room, held by both machines through a key import (setup, untimed), and
// events that use them in rotation: every event from another session than the last few, so a
// decrypting machine cannot keep them all hot when there are more than its caches hold.
import type { ExportedRoomKey } from "../../src/crypto/key-export/index.ts";
import { InboundGroupSession, OutboundGroupSession } from "../../src/crypto/megolm/index.ts";
import { type FakeDevice, MEGOLM } from "./fake-devices.ts";

export interface TimelineEvent {
  json: string;
  roomId: string;
  body: string;
}

export function rotationFixture(
  sessions: number,
  events: number,
  senders: readonly FakeDevice[],
  roomId: string,
): { entries: ExportedRoomKey[]; events: TimelineEvent[] } {
  const outbound: { session: OutboundGroupSession; from: FakeDevice }[] = [];
  const entries: ExportedRoomKey[] = [];
  for (let s = 0; s < sessions; s++) {
    const from = senders[s % senders.length] as FakeDevice;
    const session = OutboundGroupSession.create();
    outbound.push({ session, from });
    entries.push(exportOf(session, from, roomId));
  }
  const out: TimelineEvent[] = [];
  for (let e = 0; e < events; e++) {
    const { session, from } = outbound[e % sessions] as (typeof outbound)[number];
    const ts = 1_700_000_000_000 + e;
    out.push(megolmEvent(session, from, roomId, `rotation event ${e}`, `$rotation-${e}`, ts));
  }
  return { entries, events: out };
}

/** The export entry of an outbound session's inbound half, from its first index. */
export function exportOf(session: OutboundGroupSession, from: FakeDevice, roomId: string): ExportedRoomKey {
  return {
    algorithm: MEGOLM,
    room_id: roomId,
    sender_key: from.curve25519,
    session_id: session.sessionId,
    session_key: InboundGroupSession.fromSessionKey(session.sessionKey()).exportAtFirstKnownIndex(),
    sender_claimed_keys: { ed25519: from.ed25519 },
    forwarding_curve25519_key_chain: [],
  };
}

/** The session's next room event (a text message whose body names it), as JSON text. */
export function megolmEvent(
  session: OutboundGroupSession,
  from: FakeDevice,
  roomId: string,
  name: string,
  eventId: string,
  originServerTs = 1_700_000_000_000,
): TimelineEvent {
  const body = `${name}: the quick brown fox jumps over the lazy dog`;
  const ciphertext = session.encrypt(
    JSON.stringify({ type: "m.room.message", content: { msgtype: "m.text", body }, room_id: roomId }),
  );
  const event = {
    event_id: eventId,
    sender: from.userId,
    type: "m.room.encrypted",
    room_id: roomId,
    origin_server_ts: originServerTs,
    content: {
      algorithm: MEGOLM,
      sender_key: from.curve25519,
      ciphertext,
      session_id: session.sessionId,
      device_id: from.deviceId,
    },
  };
  return { json: JSON.stringify(event), roomId, body };
}
