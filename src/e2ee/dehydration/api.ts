/**
 * `OlmMachine.dehydration`: dehydrated devices (MSC3814), sans-I/O. `create` builds the upload of
 * a new device; `importRoomKeys` takes what a rehydrated device received (`RehydratedDevice`).
 */

import type { PendingEvents } from "../decryption/pending.ts";
import { keyArrived } from "../decryption/redecrypt.ts";
import type { DecryptedRoomEvent } from "../decryption/room-events.ts";
import { isDehydrated } from "../devices/device.ts";
import type { MachineContext } from "../machine-context.ts";
import type { RunStep } from "../machine-parts.ts";
import { IMPORT_BATCH_SIZE } from "../room-keys/import.ts";
import type { DehydratedDeviceUpload } from "./dehydrated-device.ts";
import type { RehydratedBundle, RehydratedRoomKey } from "./rehydrate.ts";

export class DehydrationApi {
  readonly #ctx: MachineContext;
  readonly #run: RunStep;
  readonly #pending: PendingEvents;

  constructor(ctx: MachineContext, run: RunStep, pending: PendingEvents) {
    this.#ctx = ctx;
    this.#run = run;
    this.#pending = pending;
  }

  /**
   * A new dehydrated device sealed under `key` (32 bytes): the `PUT …/dehydrated_device` body,
   * its device keys cross-signed when we hold our published self-signing key (`crossSigned`).
   * Nothing is stored: the server keeps the device, and only `key` opens it.
   */
  create(
    key: Uint8Array,
    displayName: string,
  ): Promise<{ deviceId: string; body: DehydratedDeviceUpload; crossSigned: boolean }> {
    return this.#run(async (p) => {
      // The pickle and upload code is loaded on first use (a chunk of its own in a browser bundle).
      const { createDehydratedDevice } = await import("./dehydrated-device.ts");
      const selfSigning = p.crossSigning.selfSigningKey();
      const { deviceId, body } = createDehydratedDevice({
        userId: this.#ctx.userId,
        key,
        displayName,
        ...(selfSigning !== undefined ? { selfSigning } : {}),
      });
      return { deviceId, body, crossSigned: selfSigning !== undefined };
    });
  }

  /**
   * Room keys a rehydrated device received (`RehydratedDevice.receiveEvents`), taken as if they
   * had come to this device: each arrived over Olm from the device that owns `senderKey`.
   * Saved in batches of `IMPORT_BATCH_SIZE`; events waiting for them are decrypted and returned.
   */
  async importRoomKeys(
    keys: readonly RehydratedRoomKey[],
    bundles: readonly RehydratedBundle[] = [],
  ): Promise<{ imported: number; redecrypted: DecryptedRoomEvent[] }> {
    if (bundles.length > 0) {
      // Invites that came while we were away: their bundles wait for us to accept (see history sharing).
      await this.#run(async (p) => {
        for (const b of bundles) await p.historySharing.addBundle({ ...b, receivedAt: this.#ctx.now() });
      });
    }
    let imported = 0;
    const redecrypted: DecryptedRoomEvent[] = [];
    for (let start = 0; start < keys.length; start += IMPORT_BATCH_SIZE) {
      const batch = keys.slice(start, start + IMPORT_BATCH_SIZE);
      imported += await this.#run(async (p) => {
        let count = 0;
        for (const k of batch) {
          // A sender device we have not seen: fetch its keys so its events can be attributed
          // (tracked as a sender only: anyone can send our dehydrated device room keys).
          const device = await p.devices.userDeviceByCurveKey(k.sender, k.senderKey);
          if (device === undefined) p.devices.trackSender(k.sender);
          // MSC3814: a dehydrated device sends nothing; its keys are held by whoever has its key.
          else if (isDehydrated(device)) continue;
          const update = await p.inbound.receiveRoomKey(
            { ...k.content },
            k.senderKey,
            k.senderClaimedEd25519,
          );
          if (update === undefined) continue;
          count++;
          await keyArrived(p, this.#pending, update, redecrypted);
        }
        return count;
      });
    }
    return { imported, redecrypted };
  }
}
