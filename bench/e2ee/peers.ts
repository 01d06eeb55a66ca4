// The two machines under test behind one interface, each driven the way its client drives it:
// Keyroom's `OlmMachine` as the Keyroom client does, matrix-sdk-crypto-wasm's as matrix-js-sdk's
// rust-crypto does. Only the machine calls run inside `clock.time`; the homeserver's work is outside.
import { performance } from "node:perf_hooks";
import type * as Wasm from "@matrix-org/matrix-sdk-crypto-wasm";
import { decryptKeyExport } from "../../src/crypto/key-export/index.ts";
import type { OutgoingRequest } from "../../src/e2ee/index.ts";
import { OlmMachine } from "../../src/e2ee/index.ts";
import type { CryptoStore } from "../../src/store/index.ts";
import type { RoomEventJson } from "./fake-devices.ts";
import type { BenchHomeserver, BenchRequest } from "./homeserver.ts";

/** Wall and CPU time (all threads of the process) spent inside timed machine calls. */
export class Clock {
  wallMs = 0;
  cpuMs = 0;

  /** Off while a whole loop is timed at once: `process.cpuUsage` is a system call, too dear per call. */
  perCall = true;

  async time<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.perCall) return fn();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.wallMs += performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      this.cpuMs += (cpu.user + cpu.system) / 1000;
    }
  }

  /** Times `fn` as a whole (the calls inside are not timed one by one). */
  async span(fn: () => Promise<void>): Promise<void> {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    this.perCall = false;
    try {
      await fn();
    } finally {
      this.perCall = true;
      this.wallMs += performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      this.cpuMs += (cpu.user + cpu.system) / 1000;
    }
  }

  reset(): void {
    this.wallMs = 0;
    this.cpuMs = 0;
  }
}

export interface SyncInput {
  toDevice: unknown[];
  oneTimeKeyCounts: Record<string, number>;
  unusedFallbackKeyTypes: string[];
}

/** Megolm rotation for the benchmark rooms: high enough that the encryption run never rotates. */
export const ROTATION_MSGS = 10_000;

export interface ImportResult {
  imported: number;
  fileCpuMs: number | undefined;
  importCpuMs: number;
  importWallMs: number;
}

export interface MachineUnderTest {
  readonly name: string;
  readonly userId: string;
  readonly deviceId: string;
  readonly clock: Clock;
  /** Sends outgoing requests (keys upload, queries) until there are none. */
  flush(): Promise<void>;
  /** Starts tracking these users and runs the device queries. */
  track(users: readonly string[]): Promise<void>;
  /** Claims one-time keys for devices without an Olm session; returns how many devices were claimed. */
  claimMissing(users: readonly string[]): Promise<number>;
  /** Shares the room key with every device of `users`; returns the to-device messages sent. */
  share(roomId: string, users: readonly string[]): Promise<number>;
  discard(roomId: string): Promise<void>;
  /** Encrypts a message (content as an object) into the event content's JSON text, as sent. */
  encrypt(roomId: string, body: string): Promise<string>;
  /** Processes one sync and sends what it asks for (keys upload...); returns the to-device events decrypted. */
  receiveSync(sync: SyncInput): Promise<number>;
  /** Decrypts a room event from its JSON text (as received); returns its body. */
  decrypt(eventJson: string, roomId: string): Promise<unknown>;
  /** Decrypts room events in one call, when the machine has such a call; returns their bodies. */
  decryptBatch?(events: readonly { json: string; roomId: string }[]): Promise<unknown[]>;
  /** Imports room keys (setup, untimed): the decrypted entries of an export file. */
  importEntries(entries: readonly unknown[]): Promise<number>;
  /** Decrypts an export file and imports its keys; CPU times of both parts (undefined: not timed). */
  importExportFile(file: string, passphrase: string): Promise<ImportResult>;
  close(): Promise<void>;
}

export class KeyroomPeer implements MachineUnderTest {
  readonly name = "keyroom";
  readonly clock = new Clock();
  #sync = 0;

  private constructor(
    readonly hs: BenchHomeserver,
    public machine: OlmMachine,
    public store: CryptoStore,
  ) {}

  static async create(hs: BenchHomeserver, store: CryptoStore, userId: string, deviceId: string) {
    const machine = await OlmMachine.open({ userId, deviceId, store });
    const peer = new KeyroomPeer(hs, machine, store);
    await peer.flush();
    return peer;
  }

  /** Closes the machine and its store, and opens them again (as a restarted client does). */
  async reopen(openStore: () => Promise<CryptoStore>): Promise<void> {
    const { userId, deviceId } = this.machine;
    await this.close();
    this.store = await openStore();
    this.machine = await OlmMachine.open({ userId, deviceId, store: this.store });
  }

  get userId(): string {
    return this.machine.userId;
  }

  get deviceId(): string {
    return this.machine.deviceId;
  }

  async #send(request: OutgoingRequest): Promise<void> {
    const response =
      request.type === "signature_upload" ? {} : this.hs.handle(this.userId, this.deviceId, request);
    await this.clock.time(() => this.machine.markRequestAsSent(request, response));
  }

  async flush(): Promise<void> {
    for (let round = 0; round < 20; round++) {
      const requests = await this.clock.time(() => this.machine.outgoingRequests());
      if (requests.length === 0) return;
      for (const r of requests) await this.#send(r);
    }
    throw new Error("keyroom: outgoing requests did not settle");
  }

  async track(users: readonly string[]): Promise<void> {
    await this.clock.time(() => this.machine.updateTrackedUsers(users));
    await this.flush();
  }

  async claimMissing(users: readonly string[]): Promise<number> {
    const claim = await this.clock.time(() => this.machine.getMissingSessions(users));
    if (claim === undefined) return 0;
    await this.#send(claim);
    return Object.values(claim.body.one_time_keys).reduce(
      (n, byDevice) => n + Object.keys(byDevice).length,
      0,
    );
  }

  async share(roomId: string, users: readonly string[]): Promise<number> {
    const members = users.map((userId) => ({ userId, membership: "join" as const }));
    const requests = await this.clock.time(() =>
      this.machine.shareRoomKey(roomId, members, { rotationPeriodMessages: ROTATION_MSGS }),
    );
    let messages = 0;
    for (const r of requests) {
      for (const byDevice of Object.values(r.body.messages)) messages += Object.keys(byDevice).length;
      await this.#send(r);
    }
    return messages;
  }

  discard(roomId: string): Promise<void> {
    return this.clock.time(() => this.machine.discardRoomKey(roomId));
  }

  encrypt(roomId: string, body: string): Promise<string> {
    return this.clock.time(async () =>
      JSON.stringify(
        await this.machine.encryptRoomEvent(roomId, "m.room.message", { msgtype: "m.text", body }),
      ),
    );
  }

  async receiveSync(sync: SyncInput): Promise<number> {
    this.#sync++;
    const result = await this.clock.time(() =>
      this.machine.receiveSyncChanges({
        ...sync,
        deviceLists: { changed: [], left: [] },
        nextBatch: `s${this.#sync}`,
      }),
    );
    await this.flush();
    return result.roomKeys.length;
  }

  async decrypt(eventJson: string, roomId: string): Promise<unknown> {
    const decrypted = await this.clock.time(() =>
      this.machine.decryptRoomEvent(JSON.parse(eventJson) as RoomEventJson, roomId),
    );
    return decrypted.content.body;
  }

  /** Decrypts room events (JSON text) in one `tryDecryptRoomEvents` call; returns their bodies. */
  async decryptBatch(events: readonly { json: string; roomId: string }[]): Promise<unknown[]> {
    const outcomes = await this.clock.time(() =>
      this.machine.tryDecryptRoomEvents(
        events.map((e) => ({ event: JSON.parse(e.json) as RoomEventJson, roomId: e.roomId })),
      ),
    );
    return outcomes.map((o) => (o.ok ? o.event.content.body : undefined));
  }

  async importEntries(entries: readonly unknown[]): Promise<number> {
    return (await this.machine.importRoomKeys(entries as unknown[])).imported;
  }

  async importExportFile(file: string, passphrase: string): Promise<ImportResult> {
    this.clock.reset();
    const entries = await this.clock.time(async () => decryptKeyExport(file, passphrase));
    const fileCpuMs = this.clock.cpuMs;
    this.clock.reset();
    const result = await this.clock.time(() => this.machine.importRoomKeys(entries));
    return {
      imported: result.imported,
      fileCpuMs,
      importCpuMs: this.clock.cpuMs,
      importWallMs: this.clock.wallMs,
    };
  }

  async close(): Promise<void> {
    await this.machine.close();
    await this.store.close();
  }
}

export class WasmPeer implements MachineUnderTest {
  readonly name = "crypto-wasm";
  readonly clock = new Clock();

  private constructor(
    readonly wasm: typeof Wasm,
    readonly hs: BenchHomeserver,
    readonly userId: string,
    readonly deviceId: string,
    readonly machine: Wasm.OlmMachine,
  ) {}

  static async create(wasm: typeof Wasm, hs: BenchHomeserver, userId: string, deviceId: string) {
    const machine = await wasm.OlmMachine.initialize(new wasm.UserId(userId), new wasm.DeviceId(deviceId));
    const peer = new WasmPeer(wasm, hs, userId, deviceId, machine);
    await peer.flush();
    return peer;
  }

  /** Translates a wasm request into the server's terms, answers it, and marks it sent. */
  async #send(r: { id?: string | undefined; type: Wasm.RequestType; body: string; event_type?: string }) {
    const w = this.wasm;
    const body = JSON.parse(r.body);
    let request: BenchRequest | undefined;
    switch (r.type) {
      case w.RequestType.KeysUpload:
        request = { type: "keys_upload", body };
        break;
      case w.RequestType.KeysQuery:
        request = { type: "keys_query", body };
        break;
      case w.RequestType.KeysClaim:
        request = { type: "keys_claim", body };
        break;
      case w.RequestType.ToDevice:
        request = { type: "to_device", eventType: r.event_type ?? "", body };
        break;
      default:
        request = undefined;
    }
    const response = request === undefined ? {} : this.hs.handle(this.userId, this.deviceId, request);
    const json = JSON.stringify(response);
    await this.clock.time(() => this.machine.markRequestAsSent(r.id ?? "", r.type, json));
  }

  async flush(): Promise<void> {
    for (let round = 0; round < 20; round++) {
      const requests = await this.clock.time(() => this.machine.outgoingRequests());
      if (requests.length === 0) return;
      for (const r of requests) await this.#send(r as { id: string; type: Wasm.RequestType; body: string });
    }
    throw new Error("crypto-wasm: outgoing requests did not settle");
  }

  #users(users: readonly string[]): Wasm.UserId[] {
    return users.map((u) => new this.wasm.UserId(u));
  }

  async track(users: readonly string[]): Promise<void> {
    const ids = this.#users(users);
    await this.clock.time(() => this.machine.updateTrackedUsers(ids));
    await this.flush();
  }

  async claimMissing(users: readonly string[]): Promise<number> {
    const ids = this.#users(users);
    const claim = await this.clock.time(() => this.machine.getMissingSessions(ids));
    if (claim === null || claim === undefined) return 0;
    const body = JSON.parse(claim.body) as { one_time_keys: Record<string, Record<string, string>> };
    await this.#send(claim);
    return Object.values(body.one_time_keys).reduce((n, byDevice) => n + Object.keys(byDevice).length, 0);
  }

  #settings(): Wasm.EncryptionSettings {
    const settings = new this.wasm.EncryptionSettings();
    settings.rotationPeriodMessages = BigInt(ROTATION_MSGS);
    return settings;
  }

  async share(roomId: string, users: readonly string[]): Promise<number> {
    const ids = this.#users(users);
    const room = new this.wasm.RoomId(roomId);
    const settings = this.#settings();
    const requests = await this.clock.time(() => this.machine.shareRoomKey(room, ids, settings));
    let messages = 0;
    for (const r of requests) {
      const body = JSON.parse(r.body) as { messages: Record<string, Record<string, unknown>> };
      for (const byDevice of Object.values(body.messages)) messages += Object.keys(byDevice).length;
      await this.#send(r);
    }
    return messages;
  }

  async discard(roomId: string): Promise<void> {
    const room = new this.wasm.RoomId(roomId);
    await this.clock.time(() => this.machine.invalidateGroupSession(room));
  }

  async encrypt(roomId: string, body: string): Promise<string> {
    return this.clock.time(() => {
      const room = new this.wasm.RoomId(roomId);
      const content = JSON.stringify({ msgtype: "m.text", body });
      return this.machine.encryptRoomEvent(room, "m.room.message", content);
    });
  }

  async receiveSync(sync: SyncInput): Promise<number> {
    const w = this.wasm;
    const toDevice = JSON.stringify(sync.toDevice);
    const lists = new w.DeviceLists();
    const counts = new Map(Object.entries(sync.oneTimeKeyCounts));
    const fallback = new Set(sync.unusedFallbackKeyTypes);
    const processed = await this.clock.time(() =>
      this.machine.receiveSyncChanges(toDevice, lists, counts, fallback),
    );
    let decrypted = 0;
    for (const e of processed) if (e.type === w.ProcessedToDeviceEventType.Decrypted) decrypted++;
    await this.flush();
    return decrypted;
  }

  async decrypt(eventJson: string, roomId: string): Promise<unknown> {
    return this.clock.time(async () => {
      const w = this.wasm;
      const room = new w.RoomId(roomId);
      const settings = new w.DecryptionSettings(w.TrustRequirement.Untrusted);
      const decrypted = await this.machine.decryptRoomEvent(eventJson, room, settings);
      const clear = JSON.parse(decrypted.event) as { content: { body: unknown } };
      decrypted.free();
      return clear.content.body;
    });
  }

  async importEntries(entries: readonly unknown[]): Promise<number> {
    const result = await this.machine.importExportedRoomKeys(JSON.stringify(entries), () => {});
    return result.importedCount;
  }

  /**
   * Element decrypts export files in JavaScript and hands the JSON to the machine: the file is
   * decrypted with the same code as Keyroom's (timed apart, as Keyroom's is), then the entries are
   * serialised and imported, both timed: the machine gets the same objects Keyroom's does.
   */
  async importExportFile(file: string, passphrase: string): Promise<ImportResult> {
    this.clock.reset();
    const entries = await this.clock.time(async () => decryptKeyExport(file, passphrase));
    const fileCpuMs = this.clock.cpuMs;
    this.clock.reset();
    const result = await this.clock.time(() =>
      this.machine.importExportedRoomKeys(JSON.stringify(entries), () => {}),
    );
    return {
      imported: result.importedCount,
      fileCpuMs,
      importCpuMs: this.clock.cpuMs,
      importWallMs: this.clock.wallMs,
    };
  }

  /** CPU time of the wasm's own export file decryption (`OlmMachine.decryptExportedRoomKeys`). */
  measureFileDecryption(file: string, passphrase: string): number {
    const cpu0 = process.cpuUsage();
    const json = this.wasm.OlmMachine.decryptExportedRoomKeys(file, passphrase);
    const cpu = process.cpuUsage(cpu0);
    if (json.length === 0) throw new Error("empty export");
    return (cpu.user + cpu.system) / 1000;
  }

  async close(): Promise<void> {
    this.machine.close();
  }
}
