/**
 * A `MachineStore` in memory. Records are copied in and out (structuredClone), so what the
 * machine holds can never alias what the store holds: a failed step leaves the store untouched.
 */
import type { DeviceRecord } from "../devices/device.ts";
import { getOrInsert } from "../util.ts";
import type { MachineStore } from "./port.ts";
import type {
  AccountRecord,
  InboundGroupSessionRecord,
  MachineChanges,
  OlmSessionRecord,
  OutboundGroupSessionRecord,
  OutgoingKeyRequestRecord,
  QueuedToDevice,
  ReplayRecord,
  TrackedUserRecord,
  WithheldRecord,
} from "./records.ts";

const key2 = (a: string, b: string): string => JSON.stringify([a, b]);

export class MemoryMachineStore implements MachineStore {
  #account: AccountRecord | undefined;
  readonly #olm = new Map<string, Map<string, OlmSessionRecord>>();
  readonly #inbound = new Map<string, InboundGroupSessionRecord>();
  readonly #outbound = new Map<string, OutboundGroupSessionRecord>();
  readonly #devices = new Map<string, Map<string, DeviceRecord>>();
  readonly #tracked = new Map<string, TrackedUserRecord>();
  readonly #keyRequests = new Map<string, OutgoingKeyRequestRecord>();
  readonly #withheld = new Map<string, WithheldRecord>();
  readonly #replays = new Map<string, ReplayRecord>();
  readonly #queued = new Map<string, QueuedToDevice>();
  #nextBatch: string | undefined;
  /** How many times `saveChanges` ran (tests use it to check that steps persist). */
  saveCount = 0;

  async loadAccount(): Promise<AccountRecord | undefined> {
    return this.#account && structuredClone(this.#account);
  }

  async getOlmSessions(senderKey: string): Promise<OlmSessionRecord[]> {
    return [...(this.#olm.get(senderKey)?.values() ?? [])].map((r) => structuredClone(r));
  }

  async getInboundGroupSession(
    roomId: string,
    sessionId: string,
  ): Promise<InboundGroupSessionRecord | undefined> {
    const r = this.#inbound.get(key2(roomId, sessionId));
    return r && structuredClone(r);
  }

  async getOutboundGroupSession(roomId: string): Promise<OutboundGroupSessionRecord | undefined> {
    const r = this.#outbound.get(roomId);
    return r && structuredClone(r);
  }

  async getUserDevices(userId: string): Promise<DeviceRecord[]> {
    return [...(this.#devices.get(userId)?.values() ?? [])].map((r) => structuredClone(r));
  }

  async getDeviceByCurveKey(curve25519: string): Promise<DeviceRecord | undefined> {
    for (const devices of this.#devices.values()) {
      for (const d of devices.values()) if (d.curve25519 === curve25519) return structuredClone(d);
    }
    return undefined;
  }

  async getTrackedUsers(): Promise<TrackedUserRecord[]> {
    return [...this.#tracked.values()].map((r) => structuredClone(r));
  }

  async getKeyRequests(): Promise<OutgoingKeyRequestRecord[]> {
    return [...this.#keyRequests.values()].map((r) => structuredClone(r));
  }

  async getWithheld(roomId: string, sessionId: string): Promise<WithheldRecord | undefined> {
    const r = this.#withheld.get(key2(roomId, sessionId));
    return r && structuredClone(r);
  }

  async getReplay(
    roomId: string,
    sessionId: string,
    messageIndex: number,
  ): Promise<ReplayRecord | undefined> {
    const r = this.#replays.get(JSON.stringify([roomId, sessionId, messageIndex]));
    return r && structuredClone(r);
  }

  async getQueuedToDevice(): Promise<QueuedToDevice[]> {
    return [...this.#queued.values()].map((r) => structuredClone(r));
  }

  async getNextBatch(): Promise<string | undefined> {
    return this.#nextBatch;
  }

  async saveChanges(input: MachineChanges): Promise<void> {
    const c = structuredClone(input);
    this.saveCount++;
    if (c.account) this.#account = c.account;
    for (const s of c.olmSessions) {
      getOrInsert(this.#olm, s.senderKey, () => new Map<string, OlmSessionRecord>()).set(s.sessionId, s);
    }
    for (const s of c.inboundGroupSessions) this.#inbound.set(key2(s.roomId, s.sessionId), s);
    for (const s of c.outboundGroupSessions) this.#outbound.set(s.roomId, s);
    for (const roomId of c.deletedOutboundGroupSessions) this.#outbound.delete(roomId);
    for (const d of c.devices) {
      getOrInsert(this.#devices, d.userId, () => new Map<string, DeviceRecord>()).set(d.deviceId, d);
    }
    for (const u of c.trackedUsers) this.#tracked.set(u.userId, u);
    for (const userId of c.untrackedUsers) this.#tracked.delete(userId);
    for (const r of c.keyRequests) this.#keyRequests.set(r.requestId, r);
    for (const id of c.deletedKeyRequests) this.#keyRequests.delete(id);
    for (const w of c.withheld) this.#withheld.set(key2(w.roomId, w.sessionId), w);
    for (const r of c.replays) this.#replays.set(JSON.stringify([r.roomId, r.sessionId, r.messageIndex]), r);
    for (const r of c.queuedToDevice) this.#queued.set(r.request.id, r);
    for (const id of c.sentToDevice) this.#queued.delete(id);
    if (c.nextBatch !== undefined) this.#nextBatch = c.nextBatch;
  }
}
