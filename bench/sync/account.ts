// The large account of the initial-sync benchmark, written straight into a devserver database (the
// server's own room and account stores, in one transaction) instead of through thousands of HTTP
// calls: ROOMS encrypted rooms, each with MEMBERS_PER_ROOM joined members and EVENTS_PER_ROOM
// timeline messages after its state, sent in turn by SENDERS_PER_ROOM of its members, every other
// one Megolm-encrypted (one session per sender and room). The reader's room keys go into a key export file that both sides import
// before their timed sync, so neither needs an Olm exchange and both hold the same keys.
import { type ExportedRoomKey, encryptKeyExport } from "../../src/crypto/key-export/index.ts";
import { InboundGroupSession, OutboundGroupSession } from "../../src/crypto/megolm/index.ts";
import { Homeserver } from "../../src/devserver/homeserver.ts";
import { hashPassword } from "../../src/devserver/password.ts";
import { changeMembership, createRoom } from "../../src/devserver/room-ops.ts";
import { FakeDevice, MEGOLM } from "../e2ee/fake-devices.ts";

export const EVENTS_PER_ROOM = 50;
export const MEMBERS_PER_ROOM = 20;
/** Members who send the room's messages (in turn), each from its own device and Megolm session. */
export const SENDERS_PER_ROOM = 3;
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
  /** Distinct sending devices (and users). */
  senders: number;
  /** The key export file (Matrix format, `EXPORT_PASSPHRASE`). */
  exportFile: string;
  /** Every encrypted event's body starts with this, so a side proves it decrypted it. */
  secretPrefix: string;
}

/** Writes the account into the devserver database at `dbPath` (a new file). */
export function buildAccount(dbPath: string, rooms: number): BuiltAccount {
  const hs = new Homeserver({ serverName: SERVER_NAME, dbPath });
  const reader = `@${READER}:${SERVER_NAME}`;
  const creator = `@creator:${SERVER_NAME}`;
  const poolSize = Math.max(MEMBERS_PER_ROOM, rooms * POOL_PER_ROOM);
  const pool = Array.from({ length: poolSize }, (_, i) => `@member${i}:${SERVER_NAME}`);
  /** The members who send, each with one device whose signed keys are on the server. */
  const devices = new Map<string, FakeDevice>();
  const deviceOf = (userId: string): FakeDevice => {
    let d = devices.get(userId);
    if (d === undefined) {
      d = new FakeDevice(userId, `DEV${devices.size}`);
      devices.set(userId, d);
      hs.accounts.upsertDevice(userId, d.deviceId, null, null);
      hs.accounts.setDeviceKeys(userId, d.deviceId, JSON.stringify(d.deviceKeys()));
    }
    return d;
  };
  const keys: ExportedRoomKey[] = [];
  const secretPrefix = "secret:";
  let encrypted = 0;
  let events = 0;
  try {
    hs.tx(() => {
      hs.accounts.createUser(reader, hashPassword(PASSWORD), READER);
      hs.accounts.createUser(creator, null, "creator");
      for (const u of pool) hs.accounts.createUser(u, null, u.slice(1, u.indexOf(":")));
      for (let r = 0; r < rooms; r++) {
        const { roomId } = createRoom(hs, creator, {
          preset: "public_chat",
          name: `Room ${r}`,
          initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }],
        });
        changeMembership(hs, roomId, reader, reader, "join");
        const members: string[] = [];
        for (let m = 0; m < MEMBERS_PER_ROOM - 2; m++) {
          const u = pool[(r * (MEMBERS_PER_ROOM - 2) + m) % poolSize] as string;
          changeMembership(hs, roomId, u, u, "join");
          members.push(u);
        }
        // One Megolm session per sending device in the room, as each member's client would make.
        const senders = members.slice(0, SENDERS_PER_ROOM).map((userId) => {
          const device = deviceOf(userId);
          const outbound = OutboundGroupSession.create();
          keys.push({
            algorithm: MEGOLM,
            room_id: roomId,
            sender_key: device.curve25519,
            session_id: outbound.sessionId,
            session_key: InboundGroupSession.fromSessionKey(outbound.sessionKey()).exportAtFirstKnownIndex(),
            sender_claimed_keys: { ed25519: device.ed25519 },
            forwarding_curve25519_key_chain: [],
          });
          return { device, outbound };
        });
        for (let e = 0; e < EVENTS_PER_ROOM; e++) {
          const { device, outbound } = senders[(e >> 1) % senders.length] as (typeof senders)[number];
          const content = { msgtype: "m.text", body: `message ${e} in room ${r}` };
          if (e % 2 === 0) {
            hs.appendEvent(roomId, device.userId, "m.room.message", content);
          } else {
            const payload = {
              type: "m.room.message",
              content: { ...content, body: secretPrefix + content.body },
            };
            const ciphertext = outbound.encrypt(JSON.stringify({ ...payload, room_id: roomId }));
            hs.appendEvent(roomId, device.userId, "m.room.encrypted", {
              algorithm: MEGOLM,
              sender_key: device.curve25519,
              ciphertext,
              session_id: outbound.sessionId,
              device_id: device.deviceId,
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
    senders: devices.size,
    exportFile: encryptKeyExport(keys, EXPORT_PASSPHRASE, { rounds: EXPORT_ROUNDS }),
    secretPrefix,
  };
}
