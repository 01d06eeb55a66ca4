/**
 * Runs the verification machine inside `OlmMachine`'s steps: builds its key view from the device
 * store, turns its to-device events into `ToDeviceRequest`s (sent unencrypted, as other clients
 * do) and keeps its room events for the client, fetches device keys a flow waits for, and marks
 * devices verified when a flow proves them.
 */

import { entryOf } from "../collections.ts";
import type { MachineContext } from "../machine-context.ts";
import { newRequestId } from "../machine-context.ts";
import type { Parts } from "../machine-parts.ts";
import type { ToDeviceRequest } from "../requests.ts";
import { MAX_BRIDGE_REQUESTS } from "./constants.ts";
import type { VerificationEnv, VerifiedKeys } from "./env.ts";
import type { VerificationSnapshot } from "./flow.ts";
import type { VerificationMachine } from "./machine.ts";

/** A to-device message waiting to be sent, and the flow it belongs to (undefined: none named). */
interface PendingRequest {
  readonly request: ToDeviceRequest;
  readonly flowKey: string | undefined;
}

/** A room event a flow wants sent (encrypted by the client when the room is). */
export interface VerificationRoomMessage {
  readonly roomId: string;
  /** The flow's other user (see `OlmMachine.prepareVerificationEvent`). */
  readonly otherUserId: string;
  readonly eventType: string;
  readonly content: Record<string, unknown>;
}

/** What changed in the flows since the driver last asked. */
export interface VerificationUpdates {
  readonly changed: VerificationSnapshot[];
  /** Flows the other side began: requests to show the user. */
  readonly incoming: VerificationSnapshot[];
}

export class VerificationBridge {
  /**
   * The flows, SAS and QR code are loaded on first use (a dynamic import, which bundlers split
   * into its own chunk): when a verification event arrives or the app starts or answers a flow.
   * Until then there is no flow, and nothing to route, list or time out.
   */
  #machine: VerificationMachine | undefined;
  #loading: Promise<VerificationMachine> | undefined;
  /** Oldest first; at most `MAX_BRIDGE_REQUESTS`. */
  readonly #requests = new Map<string, PendingRequest>();
  /**
   * IDs `#dropRequests` dropped, the last `MAX_BRIDGE_REQUESTS`: one handed out before it was
   * dropped may still be marked sent once it went out (a no-op, not an unknown request).
   */
  readonly #dropped = new Set<string>();
  #roomMessages: VerificationRoomMessage[] = [];
  /** Flows whose result was applied to the store (once each). */
  readonly #applied = new Set<string>();
  /** Flows for which device keys were asked already (one query each, no loop). */
  readonly #asked = new Set<string>();
  #changed = new Map<string, VerificationSnapshot>();
  #incoming: VerificationSnapshot[] = [];

  /** The verification machine, once loaded (undefined: no flow was ever started or received). */
  get machine(): VerificationMachine | undefined {
    return this.#machine;
  }

  /** Loads the verification machine (once; concurrent callers share the load). */
  async load(): Promise<VerificationMachine> {
    if (this.#machine !== undefined) return this.#machine;
    this.#loading ??= import("./machine.ts").then(({ VerificationMachine }) => {
      this.#machine ??= new VerificationMachine();
      return this.#machine;
    });
    try {
      return await this.#loading;
    } finally {
      // A failed load (a chunk the network lost) is tried again on the next use.
      this.#loading = undefined;
    }
  }

  /** The key view for one step: the devices of these users (and ours), read from the store. */
  async env(ctx: MachineContext, p: Parts, users: Iterable<string> = []): Promise<VerificationEnv> {
    const wanted = new Set<string>([ctx.userId, ...users]);
    for (const f of this.#machine?.list() ?? [])
      if (f.phase !== "done" && f.phase !== "cancelled") wanted.add(f.otherUserId);
    const keys = new Map<string, string>();
    const masters = new Map<string, string>();
    for (const userId of wanted) {
      for (const d of await p.devices.devicesOf(userId)) {
        if (!d.deleted) keys.set(`${userId}|${d.deviceId}`, d.ed25519Key);
      }
      const identity = await p.crossSigning.identity(userId);
      if (identity !== undefined) masters.set(userId, identity.masterKey);
    }
    return {
      userId: ctx.userId,
      deviceId: ctx.deviceId,
      ed25519: p.own.identityKeys.ed25519,
      deviceKey: (u, d) => keys.get(`${u}|${d}`),
      masterKey: (u) => masters.get(u),
      ownMasterTrusted: p.crossSigning.status().verified,
    };
  }

  /** After any call into the machine: collect its events, fetch missing keys, apply results. */
  async settle(p: Parts): Promise<void> {
    const machine = this.#machine;
    if (machine === undefined) return;
    const flows = machine.list();
    for (const m of machine.takeOutgoing()) {
      if (m.kind === "room") {
        this.#roomMessages.push({
          roomId: m.roomId,
          otherUserId: m.otherUserId,
          eventType: m.eventType,
          content: m.content,
        });
        continue;
      }
      const messages: ToDeviceRequest["body"]["messages"] = {};
      for (const d of m.deviceIds) entryOf(messages, m.userId)[d] = m.content;
      const request: ToDeviceRequest = {
        id: newRequestId(),
        type: "to_device",
        eventType: m.eventType,
        body: { messages },
      };
      const flowId = m.content.transaction_id;
      // Flow keys are `user|flowId` (`VerificationMachine.flowKey`, not imported: the machine is
      // loaded on first use).
      const flowKey = typeof flowId === "string" ? `${m.userId}|${flowId}` : undefined;
      this.#requests.set(request.id, { request, flowKey });
    }
    if (this.#requests.size > MAX_BRIDGE_REQUESTS) this.#dropRequests(flows);
    for (const f of flows) {
      if (!f.needsKeys || this.#asked.has(f.key)) continue;
      this.#asked.add(f.key);
      p.devices.trackSender(f.otherUserId);
    }
    for (const s of machine.takeIncoming()) this.#incoming.push(s);
    for (const s of machine.takeChanged()) {
      this.#changed.set(s.key, s);
      if (s.phase === "done" && s.verified !== undefined && !this.#applied.has(s.key)) {
        this.#applied.add(s.key);
        await applyVerified(p, s.verified);
      }
    }
    // Only flows the machine still holds (MAX_VERIFICATION_FLOWS): anyone can open flows.
    if (this.#asked.size + this.#applied.size > flows.length) {
      const live = new Set(flows.map((f) => f.key));
      for (const key of this.#asked) if (!live.has(key)) this.#asked.delete(key);
      for (const key of this.#applied) if (!live.has(key)) this.#applied.delete(key);
    }
  }

  /**
   * Back to `MAX_BRIDGE_REQUESTS` waiting messages: those of cancelled flows (or flows no longer
   * held) go first, oldest first, so a flood of strangers' timed-out flows never pushes out the
   * messages of a flow the user is in, nor the `done` of one that succeeded; only when those
   * alone fill it, their oldest.
   */
  #dropRequests(flows: readonly VerificationSnapshot[]): void {
    const kept = new Set<string>();
    for (const f of flows) if (f.phase !== "cancelled") kept.add(f.key);
    let excess = this.#requests.size - MAX_BRIDGE_REQUESTS;
    for (const [id, { flowKey }] of this.#requests) {
      if (excess === 0) return;
      if (flowKey !== undefined && kept.has(flowKey)) continue;
      this.#drop(id);
      excess--;
    }
    for (const id of this.#requests.keys()) {
      if (excess === 0) return;
      this.#drop(id);
      excess--;
    }
  }

  #drop(id: string): void {
    this.#requests.delete(id);
    this.#dropped.add(id);
    for (const oldest of this.#dropped) {
      if (this.#dropped.size <= MAX_BRIDGE_REQUESTS) break;
      this.#dropped.delete(oldest);
    }
  }

  /** Flows remembered as asked for keys or applied (at most the machine's flows: see `settle`). */
  get remembered(): number {
    return this.#asked.size + this.#applied.size;
  }

  /** To-device events to send (offered until marked sent). */
  requests(): ToDeviceRequest[] {
    return [...this.#requests.values()].map((r) => r.request);
  }
  /** Whether `id` is one of ours (or one we dropped after handing it out); forgets it. */
  markSent(id: string): boolean {
    return this.#requests.delete(id) || this.#dropped.delete(id);
  }
  takeRoomMessages(): VerificationRoomMessage[] {
    const out = this.#roomMessages;
    this.#roomMessages = [];
    return out;
  }
  takeUpdates(): VerificationUpdates {
    const updates = { changed: [...this.#changed.values()], incoming: this.#incoming };
    this.#changed = new Map();
    this.#incoming = [];
    return updates;
  }
}

/**
 * Marks what the flow proved as verified (only keys that are still the ones it proved): devices
 * (our own get our self-signing signature) and master keys (another user's gets our user-signing
 * signature; our own makes our identity trusted). The signature uploads go out with the
 * machine's outgoing requests.
 */
async function applyVerified(p: Parts, verified: VerifiedKeys): Promise<void> {
  for (const d of verified.devices) {
    const record = await p.devices.device(d.userId, d.deviceId);
    if (record === undefined || record.deleted || record.ed25519Key !== d.ed25519) continue;
    const updated = await p.devices.setTrust(d.userId, d.deviceId, "verified");
    if (updated === undefined) continue;
    await p.gossip.trustChanged(updated);
    p.crossSigning.signDevice(updated);
    // A device of ours we just verified: ask it for the secrets we lack, answer what it asked.
    await p.secrets.deviceVerified(updated);
  }
  for (const m of verified.masterKeys) {
    const identity = await p.crossSigning.identity(m.userId);
    if (identity === undefined || identity.masterKey !== m.key) continue;
    await p.crossSigning.verifyUser(m.userId);
  }
}
