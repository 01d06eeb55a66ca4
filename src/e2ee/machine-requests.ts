/**
 * The machine's own requests and the responses routed back to them: the keys upload (offered
 * until acknowledged), device queries, cross-signing uploads, key claims (with a back-off for
 * devices that gave no key), queued to-device messages and verification messages. Every method
 * runs inside a machine step, on its parts.
 */
import { ClaimBackoff, deviceKey } from "./claim-backoff.ts";
import type { DeviceRecord } from "./devices/device.ts";
import { E2eeError } from "./errors.ts";
import {
  MAX_KEY_UPLOAD_CONFLICTS,
  type RequestFailure,
  type RequestFailureOutcome,
  refusedKey,
  UploadConflicts,
} from "./identity/upload-conflict.ts";
import { type MachineContext, newRequestId } from "./machine-context.ts";
import type { Parts } from "./machine-parts.ts";
import {
  type KeysClaimResponse,
  type KeysUploadRequest,
  type OutgoingRequest,
  parseKeysClaimResponse,
  parseKeysQueryResponse,
  parseKeysUploadResponse,
  type SigningKeysUploadRequest,
} from "./requests.ts";
import { mayQueueReply, queuedInStep, queuedToDevice, queueEncryptedToDevice } from "./to-device-queue.ts";
import type { VerificationBridge } from "./verification/bridge.ts";

export { CLAIM_FAILURE_BACKOFF_MS, MAX_CLAIM_FAILURES } from "./claim-backoff.ts";

/** Removed queue IDs remembered (see `MachineRequests.removed`). */
const MAX_REMOVED_IDS = 1000;

export class MachineRequests {
  readonly #ctx: MachineContext;
  readonly #bridge: VerificationBridge;
  /** Told after a device query's response is applied (verification flows waiting for keys). */
  readonly #keysUpdated: (p: Parts) => Promise<void>;
  readonly #claimFailures = new ClaimBackoff();
  /**
   * IDs of queued to-device requests that left the queue, the last `MAX_REMOVED_IDS`: one withdrawn
   * after it was handed out (a key request whose key came) may still be marked sent, a no-op.
   */
  readonly #removed = new Set<string>();
  #upload: KeysUploadRequest | undefined;
  /** Uploads refused for key IDs the server holds other keys under (see `upload-conflict.ts`). */
  readonly #conflicts = new UploadConflicts();

  constructor(ctx: MachineContext, bridge: VerificationBridge, keysUpdated: (p: Parts) => Promise<void>) {
    this.#ctx = ctx;
    this.#bridge = bridge;
    this.#keysUpdated = keysUpdated;
  }

  /** Queued to-device requests that left the queue in a saved step (sent or withdrawn). */
  removed(ids: readonly string[]): void {
    for (const id of ids) {
      this.#removed.add(id);
      const oldest = this.#removed.values().next();
      if (this.#removed.size > MAX_REMOVED_IDS && oldest.done !== true) this.#removed.delete(oldest.value);
    }
  }

  /** Drops the keys upload built from the account in memory (it was reloaded from the store). */
  dropUpload(): void {
    this.#upload = undefined;
  }

  /** Everything to send now (see `OlmMachine.outgoingRequests`). */
  async outgoing(p: Parts): Promise<OutgoingRequest[]> {
    const out: OutgoingRequest[] = [];
    // Held back for a while after the server refused new keys too many times in a row.
    if (this.#conflicts.allows(this.#ctx.now())) {
      if (this.#upload === undefined) {
        const body = p.own.uploadBody();
        if (body !== undefined) this.#upload = { id: newRequestId(), type: "keys_upload", body };
      }
      if (this.#upload !== undefined) {
        const body = p.own.withoutUsedKeys(this.#upload.body);
        if (body !== this.#upload.body) this.#upload = { ...this.#upload, body };
        out.push(this.#upload);
      }
    }
    out.push(...p.devices.inFlightRequests(), ...p.devices.queryRequests());
    out.push(...p.crossSigning.pendingUploads());
    out.push(...p.olm.inFlightClaims());
    const needy: DeviceRecord[] = [
      ...p.gossip.devicesAwaitingSession(),
      ...p.secrets.devicesAwaitingSession(),
    ];
    for (const { curve25519, userId } of p.olm.wedged()) {
      const device = await p.devices.userDeviceByCurveKey(userId, curve25519);
      if (device !== undefined && !device.deleted) needy.push(device);
      // Their device list is known and has no such device: junk, not a device to unwedge.
      else if (p.devices.isTracked(userId) && !p.devices.isOutdated(userId))
        p.olm.forgetWedged(userId, curve25519);
    }
    const claim = p.olm.claimRequest(await p.olm.devicesNeedingSessions(this.#withoutBackoff(needy)));
    if (claim !== undefined) out.push(claim);
    for (const q of p.queue.values()) {
      out.push(q.request);
      if (q.keyRequest !== undefined) p.gossip.handedOut(q.keyRequest);
    }
    out.push(...this.#bridge.requests());
    for (const r of this.#ctx.tx.queuedRequests) {
      if (p.queue.has(r.requestId)) continue;
      const q = queuedToDevice(r);
      if (q === undefined) continue;
      out.push(q.request);
      if (q.keyRequest !== undefined) p.gossip.handedOut(q.keyRequest);
    }
    return out;
  }

  /** Routes a response by the request's `type` (see `OlmMachine.markRequestAsSent`). */
  async receive(
    p: Parts,
    request: Pick<OutgoingRequest | SigningKeysUploadRequest, "id" | "type">,
    response: unknown,
  ): Promise<void> {
    const { id } = request;
    const unknownRequest = (): never => {
      throw new E2eeError("UNKNOWN_REQUEST", "no request with this ID is in flight");
    };
    switch (request.type) {
      case "keys_upload": {
        const upload = this.#upload;
        if (upload?.id !== id) return unknownRequest();
        p.own.uploadSucceeded(upload.body, parseKeysUploadResponse(response));
        this.#upload = undefined;
        this.#conflicts.succeeded();
        return;
      }
      case "keys_query": {
        if (!p.devices.hasQuery(id)) return unknownRequest();
        const changes = await p.devices.receiveQueryResponse(id, parseKeysQueryResponse(response));
        if (changes.ownDeviceMissing) p.own.deviceKeysLost();
        if (changes.response !== undefined) {
          await p.crossSigning.receiveQueryResponse(changes.users, changes.response);
        }
        // A device of ours may be cross-signed now: the key and secret requests it made are answered.
        await p.gossip.keysUpdated();
        await p.secrets.keysUpdated();
        await this.#keysUpdated(p);
        return;
      }
      case "keys_claim":
        if (!p.olm.hasClaim(id)) return unknownRequest();
        return this.#receiveClaim(p, id, parseKeysClaimResponse(response));
      case "signature_upload":
      case "signing_keys_upload":
        if (!p.crossSigning.hasUpload(id)) return unknownRequest();
        // What the server now holds changed: ask for it again (it also tells us what it refused).
        p.devices.markOutdated(p.crossSigning.uploadSucceeded(id));
        return;
      case "to_device": {
        if (this.#bridge.markSent(id)) return;
        const queued = p.queue.get(id) ?? queuedInStep(this.#ctx, id);
        if (queued === undefined) return this.#removed.has(id) ? undefined : unknownRequest();
        this.#ctx.tx.deletedQueuedRequests.push(id);
        if (queued.roomId !== undefined) {
          await p.outbound.markShared(queued.roomId, id);
          p.verificationKeys.markShared(id);
        }
        return;
      }
      default:
        return unknownRequest();
    }
  }

  /**
   * An error answer to a request (see `OlmMachine.markRequestAsFailed`). Only one is acted on: the
   * keys upload refused because the server holds other keys under the IDs of ours; its keys are
   * replaced and the upload rebuilt, `MAX_KEY_UPLOAD_CONFLICTS` times in a row at most.
   */
  failed(
    p: Parts,
    request: Pick<OutgoingRequest, "id" | "type">,
    failure: RequestFailure,
  ): RequestFailureOutcome {
    const upload = this.#upload;
    if (request.type !== "keys_upload" || upload?.id !== request.id) return "unchanged";
    const refused = refusedKey(failure, upload.body);
    if (refused === undefined) return "unchanged";
    if (!this.#conflicts.refused(this.#ctx.now())) {
      throw new E2eeError(
        "KEY_UPLOAD_CONFLICT",
        `the server refused our one-time keys ${MAX_KEY_UPLOAD_CONFLICTS + 1} times in a row, each ` +
          "time for a key ID it holds another key under; the upload waits before it is tried again",
      );
    }
    p.own.replaceRefusedKeys(refused.fallback);
    this.#upload = undefined;
    return "rebuilt";
  }

  /** These users' devices, but ours and blacklisted ones, whose claim is not backing off. */
  async claimable(p: Parts, userIds: readonly string[]): Promise<DeviceRecord[]> {
    const candidates: DeviceRecord[] = [];
    for (const userId of userIds) {
      for (const d of await p.devices.devicesOf(userId)) {
        if (d.userId === this.#ctx.userId && d.deviceId === this.#ctx.deviceId) continue;
        if (d.trust !== "blacklisted") candidates.push(d);
      }
    }
    return this.#withoutBackoff(candidates);
  }

  #withoutBackoff(devices: readonly DeviceRecord[]): DeviceRecord[] {
    // Every send asks: with no failure noted (the usual case), no key to build per device.
    if (this.#claimFailures.size === 0) return [...devices];
    const now = this.#ctx.now();
    return devices.filter((d) => this.#claimFailures.allows(deviceKey(d), now));
  }

  async #receiveClaim(p: Parts, id: string, response: KeysClaimResponse): Promise<void> {
    const { created, failed, unwedged } = await p.olm.receiveClaimResponse(id, response);
    // Devices that gave no usable key are not asked again for a while (no request loop on them).
    for (const d of failed) this.#claimFailures.failed(deviceKey(d), this.#ctx.now());
    for (const d of created) this.#claimFailures.succeeded(deviceKey(d));
    for (const device of unwedged) {
      // A reply: a server can make up devices to unwedge (see to-device-queue.ts).
      const reply = JSON.stringify(["m.dummy", device.curve25519Key]);
      if (!mayQueueReply(this.#ctx, p.queue, reply)) continue;
      const content = await p.olm.encrypt(device, "m.dummy", {});
      if (content === undefined) continue;
      queueEncryptedToDevice(
        this.#ctx,
        { [device.userId]: { [device.deviceId]: { ...content } } },
        { reply },
      );
    }
    await p.gossip.retryPendingAnswers();
    await p.secrets.retryPendingAnswers();
  }
}
