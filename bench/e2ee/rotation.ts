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
    entries.push({
      algorithm: MEGOLM,
      room_id: roomId,
      sender_key: from.curve25519,
      session_id: session.sessionId,
      session_key: InboundGroupSession.fromSessionKey(session.sessionKey()).exportAtFirstKnownIndex(),
      sender_claimed_keys: { ed25519: from.ed25519 },
      forwarding_curve25519_key_chain: [],
    });
  }
  const out: TimelineEvent[] = [];
  for (let e = 0; e < events; e++) {
    const { session, from } = outbound[e % sessions] as (typeof outbound)[number];
    const body = `rotation event ${e}: the quick brown fox jumps over the lazy dog`;
    const ciphertext = session.encrypt(
      JSON.stringify({ type: "m.room.message", content: { msgtype: "m.text", body }, room_id: roomId }),
    );
    const event = {
      event_id: `$rotation-${e}`,
      sender: from.userId,
      type: "m.room.encrypted",
      room_id: roomId,
      origin_server_ts: 1_700_000_000_000 + e,
      content: {
        algorithm: MEGOLM,
        sender_key: from.curve25519,
        ciphertext,
        session_id: session.sessionId,
        device_id: from.deviceId,
      },
    };
    out.push({ json: JSON.stringify(event), roomId, body });
  }
  return { entries, events: out };
}
