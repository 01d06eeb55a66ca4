// A key export file with many room keys, built fast: each entry is a valid v1 Megolm export (a
// random ratchet and a real Ed25519 public key, whose base64 is the session ID) without running a
// whole outbound session per key. One entry is a real session, so a decryption can prove it worked.
import type { ExportedRoomKey } from "../../src/crypto/key-export/index.ts";
import { encryptKeyExport } from "../../src/crypto/key-export/index.ts";
import { InboundGroupSession, OutboundGroupSession } from "../../src/crypto/megolm/index.ts";
import { ed25519PublicKey, encodeBase64, randomBytes } from "../../src/crypto/primitives/index.ts";
import type { FakeDevice, RoomEventJson } from "./fake-devices.ts";
import { MEGOLM } from "./fake-devices.ts";

export const EXPORT_PASSPHRASE = "correct horse battery staple";

export interface ExportFixture {
  file: string;
  count: number;
  /** An event that the real session among the keys decrypts. */
  probe: RoomEventJson;
  probeBody: string;
}

export function buildExportFile(
  count: number,
  senders: readonly FakeDevice[],
  rounds?: number,
): ExportFixture {
  const keys: ExportedRoomKey[] = [];
  const probeAt = Math.floor(count / 2);
  const sender = senders[probeAt % senders.length];
  if (sender === undefined) throw new Error("no sender devices");
  const probeRoom = "!history:bench.test";
  const outbound = OutboundGroupSession.create();
  // Exported before the probe is encrypted, so the export starts at the probe's index.
  const probeExport = InboundGroupSession.fromSessionKey(outbound.sessionKey()).exportAtFirstKnownIndex();
  const probeBody = "the one event the opened store must decrypt";
  const ciphertext = outbound.encrypt(
    JSON.stringify({
      type: "m.room.message",
      content: { msgtype: "m.text", body: probeBody },
      room_id: probeRoom,
    }),
  );
  const probe: RoomEventJson = {
    event_id: "$probe",
    sender: sender.userId,
    type: "m.room.encrypted",
    room_id: probeRoom,
    origin_server_ts: 1_700_000_000_000,
    content: {
      algorithm: MEGOLM,
      sender_key: sender.curve25519,
      ciphertext,
      session_id: outbound.sessionId,
      device_id: sender.deviceId,
    },
  };
  for (let i = 0; i < count; i++) {
    const from = senders[i % senders.length] ?? sender;
    keys.push(
      i === probeAt
        ? {
            algorithm: MEGOLM,
            room_id: probeRoom,
            sender_key: from.curve25519,
            session_id: outbound.sessionId,
            session_key: probeExport,
            sender_claimed_keys: { ed25519: from.ed25519 },
            forwarding_curve25519_key_chain: [],
          }
        : randomRoomKey(from, `!room${i % 500}:bench.test`),
    );
  }
  const file = encryptKeyExport(keys, EXPORT_PASSPHRASE, rounds === undefined ? {} : { rounds });
  return { file, count, probe, probeBody };
}

/**
 * A valid v1 export of a Megolm session nobody can encrypt with: a random ratchet at index 0 and a
 * real Ed25519 public key (whose base64 is the session ID), without running an outbound session.
 */
export function randomRoomKey(from: FakeDevice, roomId: string): ExportedRoomKey {
  const body = new Uint8Array(165);
  body[0] = 1; // v1 export, message index 0
  const signingKey = ed25519PublicKey(randomBytes(32));
  body.set(randomBytes(128), 5);
  body.set(signingKey, 133);
  return {
    algorithm: MEGOLM,
    room_id: roomId,
    sender_key: from.curve25519,
    session_id: encodeBase64(signingKey),
    session_key: encodeBase64(body),
    sender_claimed_keys: { ed25519: from.ed25519 },
    forwarding_curve25519_key_chain: [],
  };
}
