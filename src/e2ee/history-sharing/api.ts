/**
 * `OlmMachine.historySharing`: history sharing on invite (MSC4268, spec v1.19), sans-I/O. The
 * inviter builds a bundle of the room's shareable keys (`buildBundle`), which the client encrypts
 * and uploads, then sends its `file` to the invitee's cross-signed devices (`shareBundle`). The
 * invitee remembers bundles as they arrive (in the sync step) and imports one only from the user
 * whose invite it accepted, within the window (`inviteAccepted`, `bundlesToImport`, `importBundle`).
 */
import type { EncryptedFile } from "../../crypto/attachments/index.ts";
import type { ExportedRoomKey } from "../../crypto/key-export/index.ts";
import type { RoomSessionKey } from "../../store/records.ts";
import { entryOf } from "../collections.ts";
import type { DecryptedRoomEvent } from "../decryption/room-events.ts";
import type { MachineContext } from "../machine-context.ts";
import type { RunStep } from "../machine-parts.ts";
import type { ToDeviceRequest } from "../requests.ts";
import { queueEncryptedToDevice } from "../to-device-queue.ts";
import {
  buildRoomKeyBundle,
  parseRoomKeyBundle,
  ROOM_KEY_BUNDLE_TYPE,
  type RoomKeyBundle,
} from "./bundle.ts";
import type { PendingBundle } from "./pending.ts";

type ImportRoomKeys = (
  keys: readonly ExportedRoomKey[],
) => Promise<{ imported: number; total: number; redecrypted: DecryptedRoomEvent[] }>;

export class HistorySharingApi {
  readonly #ctx: MachineContext;
  readonly #run: RunStep;
  readonly #importRoomKeys: ImportRoomKeys;

  constructor(ctx: MachineContext, run: RunStep, importRoomKeys: ImportRoomKeys) {
    this.#ctx = ctx;
    this.#run = run;
    this.#importRoomKeys = importRoomKeys;
  }

  /**
   * The bundle of this room's keys for someone we invite: sessions marked shareable in
   * `room_keys`, the others in `withheld` (`m.history_not_shared`). Serialise it, encrypt it as an
   * attachment, upload it, then `shareBundle`.
   */
  buildBundle(roomId: string): Promise<RoomKeyBundle> {
    return this.#run(async (p) => {
      const unreadable: RoomSessionKey[] = [];
      const records = await this.#ctx.store.getInboundGroupSessionsForRoom(roomId, unreadable);
      p.inbound.noteDamaged(unreadable);
      return buildRoomKeyBundle(roomId, records);
    });
  }

  /**
   * Sends `m.room_key_bundle` (the uploaded bundle's `file`) over Olm to each of `userId`'s devices
   * that its owner cross-signed, and only those (the spec forbids others), none while the identity
   * of a user we verified changed (a violation) and is not accepted; the Olm payload carries
   * our device keys. Their device list must be current and Olm sessions claimed
   * (`getMissingSessions`). The request is also queued in `outgoingRequests()`.
   */
  shareBundle(
    roomId: string,
    userId: string,
    file: EncryptedFile,
  ): Promise<{ request: ToDeviceRequest | undefined; recipients: string[]; withoutSession: string[] }> {
    return this.#run(async (p) => {
      const identity = await p.crossSigning.identity(userId);
      const messages: ToDeviceRequest["body"]["messages"] = {};
      const recipients: string[] = [];
      const withoutSession: string[] = [];
      // A user we verified whose identity then changed (a violation: it may be a server's) has no
      // cross-signed devices until the app accepts the new identity or withdraws the verification.
      if (identity !== undefined && p.crossSigning.info(identity).violation) {
        return { request: undefined, recipients, withoutSession };
      }
      for (const d of await p.devices.devicesOf(userId)) {
        if (d.deleted || d.trust === "blacklisted" || !p.crossSigning.deviceTrust(d, identity).crossSigned)
          continue;
        if (d.userId === this.#ctx.userId && d.deviceId === this.#ctx.deviceId) continue;
        const content = await p.olm.encrypt(
          d,
          ROOM_KEY_BUNDLE_TYPE,
          { room_id: roomId, file: { ...file } },
          { withDeviceKeys: true },
        );
        if (content === undefined) withoutSession.push(d.deviceId);
        else {
          entryOf(messages, userId)[d.deviceId] = { ...content };
          recipients.push(d.deviceId);
        }
      }
      if (recipients.length === 0) return { request: undefined, recipients, withoutSession };
      const request = queueEncryptedToDevice(this.#ctx, messages);
      return { request, recipients, withoutSession };
    });
  }

  /** We accepted `inviter`'s invite to `roomId`: their bundle for it is imported if it comes in time. */
  inviteAccepted(roomId: string, inviter: string): Promise<void> {
    return this.#run(async (p) => p.historySharing.inviteAccepted(roomId, inviter));
  }

  /**
   * Bundles to download and import now: each from the inviter of a room we joined recently, sent
   * by a device of the inviter that the inviter cross-signed (as the sender sends only to
   * cross-signed devices; a device the server made up under the inviter's name has no such
   * signature). Bundles wait while the inviter's device list is not current
   * (`userIdsToRefresh`), and those from an inviter we verified whose identity changed (a
   * violation) wait for the app to accept it; one from a known device without the signature is
   * dropped.
   */
  bundlesToImport(): Promise<PendingBundle[]> {
    return this.#run(async (p) => {
      const out: PendingBundle[] = [];
      for (const b of await p.historySharing.ready()) {
        // Judged on a current device list only: a stale one must not drop a bundle for good.
        if (!p.devices.isTracked(b.sender) || p.devices.isOutdated(b.sender)) continue;
        const device = await p.devices.userDeviceByCurveKey(b.sender, b.senderKey);
        if (device === undefined || device.deleted) {
          await p.historySharing.done(b.roomId, b.sender); // their list is known: no such device
          continue;
        }
        const identity = await p.crossSigning.identity(b.sender);
        // An inviter we verified whose identity changed: kept until the app accepts the new one.
        if (identity !== undefined && p.crossSigning.info(identity).violation) continue;
        const trust = p.crossSigning.deviceTrust(device, identity);
        if (trust.crossSigned) out.push(b);
        else await p.historySharing.done(b.roomId, b.sender);
      }
      return out;
    });
  }

  /** The inviters whose ready bundles wait for their device list. */
  userIdsToRefresh(): Promise<string[]> {
    return this.#run(async (p) => [...new Set((await p.historySharing.ready()).map((b) => b.sender))]);
  }

  /**
   * Imports a downloaded, decrypted bundle (`parseRoomKeyBundle`: keys of its room only), in
   * batches. Its keys are marked imported and shareable, with the inviter's device as their
   * forwarding chain: we have only the inviter's word for them. The bundle is then forgotten.
   */
  async importBundle(
    bundle: PendingBundle,
    bytes: Uint8Array,
  ): Promise<{ imported: number; total: number; redecrypted: DecryptedRoomEvent[] }> {
    const keys = parseRoomKeyBundle(bytes, bundle.roomId).map((k) => ({
      ...k,
      forwarding_curve25519_key_chain: [bundle.senderKey],
    }));
    const result = await this.#importRoomKeys(keys);
    await this.drop(bundle.roomId, bundle.sender);
    return result;
  }

  /** Forgets a bundle that cannot be imported (its media expired, it is malformed). */
  drop(roomId: string, sender: string): Promise<void> {
    return this.#run(async (p) => p.historySharing.done(roomId, sender));
  }
}
