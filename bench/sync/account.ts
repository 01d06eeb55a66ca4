// The large account of the initial-sync benchmark, written straight into a devserver database (the
// server's own room and account stores, in one transaction) instead of through thousands of HTTP
// calls: ROOMS encrypted rooms, each with MEMBERS_PER_ROOM joined members and EVENTS_PER_ROOM
// timeline messages after its state, every other one Megolm-encrypted by one sender device (one
// session per room). The reader's room keys go into a key export file that both sides import
// before their timed sync, so neither needs an Olm exchange and both hold the same keys.
import { type ExportedRoomKey, encryptKeyExport } from "../../src/crypto/key-export/index.ts";
import { InboundGroupSession, OutboundGroupSession } from "../../src/crypto/megolm/index.ts";
import { Homeserver } from "../../src/devserver/homeserver.ts";
import { hashPassword } from "../../src/devserver/password.ts";
import { changeMembership, createRoom } from "../../src/devserver/room-ops.ts";
import { FakeDevice, MEGOLM } from "../e2ee/fake-devices.ts";

export const EVENTS_PER_ROOM = 50;
export const MEMBERS_PER_ROOM = 20;
/** Distinct member users per room: the membership pool is twice the room count. */
const POOL_PER_ROOM = 2;
export const SERVER_NAME = "localhost";
export const READER = "reader";
export const PASSWORD = "pw";
export const EXPORT_PASSPHRASE = "sync bench";
/** PBKDF2 rounds of the export file: its import is set-up, not the work measured. */
const EXPORT_ROUNDS = 1000;

export interface BuiltAccount {
  rooms: number;
  events: number;
  encrypted: number;
  memberships: number;
  users: number;
  /** The key export file (Matrix format, `EXPORT_PASSPHRASE`). */
  exportFile: string;
  /** Every encrypted event's body starts with this, so a side proves it decrypted it. */
  secretPrefix: string;
}

/** Writes the account into the devserver database at `dbPath` (a new file). */
export function buildAccount(dbPath: string, rooms: number): BuiltAccount {
  const hs = new Homeserver({ serverName: SERVER_NAME, dbPath });
  const reader = `@${READER}:${SERVER_NAME}`;
  const senderId = `@sender:${SERVER_NAME}`;
  const sender = new FakeDevice(senderId, "SENDERDEV");
  const poolSize = Math.max(MEMBERS_PER_ROOM, rooms * POOL_PER_ROOM);
  const pool = Array.from({ length: poolSize }, (_, i) => `@member${i}:${SERVER_NAME}`);
  const keys: ExportedRoomKey[] = [];
  const secretPrefix = "secret:";
  let encrypted = 0;
  let events = 0;
  try {
    hs.tx(() => {
      hs.accounts.createUser(reader, hashPassword(PASSWORD), READER);
      hs.accounts.createUser(senderId, null, "sender");
      hs.accounts.upsertDevice(senderId, sender.deviceId, "sender", null);
      hs.accounts.setDeviceKeys(senderId, sender.deviceId, JSON.stringify(sender.deviceKeys()));
      for (const u of pool) hs.accounts.createUser(u, null, u.slice(1, u.indexOf(":")));
      for (let r = 0; r < rooms; r++) {
        const { roomId } = createRoom(hs, senderId, {
          preset: "public_chat",
          name: `Room ${r}`,
          initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }],
        });
        changeMembership(hs, roomId, reader, reader, "join");
        for (let m = 0; m < MEMBERS_PER_ROOM - 2; m++) {
          const u = pool[(r * (MEMBERS_PER_ROOM - 2) + m) % poolSize] as string;
          changeMembership(hs, roomId, u, u, "join");
        }
        const outbound = OutboundGroupSession.create();
        keys.push({
          algorithm: MEGOLM,
          room_id: roomId,
          sender_key: sender.curve25519,
          session_id: outbound.sessionId,
          session_key: InboundGroupSession.fromSessionKey(outbound.sessionKey()).exportAtFirstKnownIndex(),
          sender_claimed_keys: { ed25519: sender.ed25519 },
          forwarding_curve25519_key_chain: [],
        });
        for (let e = 0; e < EVENTS_PER_ROOM; e++) {
          const content = { msgtype: "m.text", body: `message ${e} in room ${r}` };
          if (e % 2 === 0) {
            hs.appendEvent(roomId, senderId, "m.room.message", content);
          } else {
            const payload = {
              type: "m.room.message",
              content: { ...content, body: secretPrefix + content.body },
            };
            const ciphertext = outbound.encrypt(JSON.stringify({ ...payload, room_id: roomId }));
            hs.appendEvent(roomId, senderId, "m.room.encrypted", {
              algorithm: MEGOLM,
              sender_key: sender.curve25519,
              ciphertext,
              session_id: outbound.sessionId,
              device_id: sender.deviceId,
            });
            encrypted++;
          }
          events++;
        }
      }
    });
  } finally {
    hs.close();
  }
  return {
    rooms,
    events,
    encrypted,
    memberships: rooms * MEMBERS_PER_ROOM,
    users: poolSize + 2,
    exportFile: encryptKeyExport(keys, EXPORT_PASSPHRASE, { rounds: EXPORT_ROUNDS }),
    secretPrefix,
  };
}
