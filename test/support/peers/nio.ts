// Interop peer: matrix-nio 0.20 on libolm (Debian python3-matrix-nio + python3-olm), one Python
// process per device, driven over JSON lines (see nio_peer.py). nio has no background sync: the
// driver syncs whenever it waits, and before it sends, so it behaves like an always-syncing client.
//
//   if (skipReasonForNio()) return t.skip(...);                    // loud SKIPPED: line when missing
//   const bob = await NioPeer.register(baseUrl, "bob", "pw");
//   await bob.join(roomId);
//   const m = await bob.waitForMessage(roomId, bodyIs("hi"));
//   await bob.close();
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as z from "../../../src/wire/zod.ts";
import { budget } from "../budget.ts";
import { PYTHON } from "../python.ts";
import { PeerError, withTimeout } from "./errors.ts";
import {
  type CreateRoomOptions,
  DEFAULT_PEER_TIMEOUT_MS,
  type IdentityKeys,
  type Membership,
  type Peer,
  type PeerMessage,
} from "./types.ts";

const SCRIPT = fileURLToPath(new URL("./nio_peer.py", import.meta.url));

/** How long one request to the Python process may take (a sync long-poll is bounded well below). */
export const NIO_REQUEST_TIMEOUT_MS = 30_000;
/** Longest server-side long-poll a wait asks for, so a wait re-checks its deadline regularly. */
const MAX_POLL_MS = 5_000;
/** How much of the process's stderr is kept for error reports. */
const STDERR_TAIL_CHARS = 4_000;
/** nio puts the access token in query strings; a traceback quoting a URL must not leak it. */
const TOKEN_PATTERN = /(access_token=|Bearer\s+)[^&\s'"]+/g;

/** `text` with every access token (query parameter or bearer header) replaced by `<redacted>`. */
export function redactTokens(text: string): string {
  return text.replace(TOKEN_PATTERN, "$1<redacted>");
}

const peerMessage = z.object({
  roomId: z.string(),
  eventId: z.string(),
  sender: z.string(),
  type: z.string(),
  body: z.nullable(z.string()),
  decrypted: z.boolean(),
  encrypted: z.boolean(),
  sessionId: z.nullable(z.string()),
});
const roomView = z.object({
  roomId: z.string(),
  membership: z.enum(["join", "invite", "leave"]),
  encrypted: z.boolean(),
  members: z.record(z.string(), z.enum(["join", "invite"])),
});
const results = {
  register: z.object({ userId: z.string(), deviceId: z.string() }),
  login: z.object({ userId: z.string(), deviceId: z.string() }),
  sync: z.object({
    messages: z.array(peerMessage),
    rooms: z.array(roomView),
    devices: z.record(z.string(), z.array(z.string())),
  }),
  create_room: z.object({ roomId: z.string() }),
  join: z.object({ roomId: z.string() }),
  invite: z.object({}),
  leave: z.object({}),
  send_text: z.object({ eventId: z.string() }),
  identity_keys: z.object({ curve25519: z.string(), ed25519: z.string() }),
  logout: z.object({}),
  export_keys: z.object({ data: z.string() }),
  import_keys: z.object({ retried: z.array(peerMessage) }),
  close: z.object({}),
  dummies_received: z.object({ dummies: z.array(z.object({ sender: z.string(), senderKey: z.string() })) }),
  discard_group_session: z.object({}),
  sas_start: z.object({ transactionId: z.string() }),
  sas_list: z.object({
    verifications: z.array(
      z.object({
        transactionId: z.string(),
        userId: z.string(),
        deviceId: z.string(),
        weStarted: z.boolean(),
        verified: z.boolean(),
        canceled: z.boolean(),
        cancelCode: z.nullable(z.string()),
        receivedCancelCode: z.nullable(z.string()),
        emoji: z.nullable(z.array(z.string())),
        decimals: z.nullable(z.array(z.number())),
      }),
    ),
  }),
  sas_accept: z.object({}),
  sas_confirm: z.object({}),
  sas_reject: z.object({}),
  sas_cancel: z.object({}),
  device_verified: z.object({ verified: z.boolean() }),
} as const;
/**
 * A SAS verification as nio holds it (`emoji`: the symbols, once the keys were exchanged; nio names
 * some differently from the spec). `cancelCode` is nio's own (what it sent when it cancelled; nio
 * sets `m.user` when the other side cancelled), `receivedCancelCode` the code the other side sent.
 */
export type NioSas = z.infer<(typeof results)["sas_list"]>["verifications"][number];
type Method = keyof typeof results;
type Result<M extends Method> = z.infer<(typeof results)[M]>;
type RoomView = z.infer<typeof roomView>;

const response = z.union([
  z.object({ id: z.number(), ok: z.literal(true), result: z.unknown() }),
  z.object({
    id: z.nullable(z.number()),
    ok: z.literal(false),
    error: z.object({
      code: z.string(),
      message: z.string(),
      errcode: z.optional(z.string()),
      httpStatus: z.optional(z.number()),
    }),
  }),
]);

export interface NioPeerOptions {
  /** Reuse (login) or request (register) this device ID. */
  deviceId?: string;
  /**
   * nio's store directory (Olm account, sessions, sync token). Give the same one to a later `login`
   * with the same `deviceId` to restart a device; kept on close. Default: a fresh temp dir, removed on close.
   */
  storeDir?: string;
  /** Per-request limit on the Python side's answer. Default `NIO_REQUEST_TIMEOUT_MS`. */
  requestTimeoutMs?: number;
}

interface Pending {
  method: Method;
  resolve: (value: unknown) => void;
  reject: (e: PeerError) => void;
}

export class NioPeer implements Peer {
  readonly kind = "nio" as const;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private stderrTail = "";
  private exited: PeerError | undefined;
  private closing: Promise<void> | undefined;
  private readonly exit: Promise<void>;
  private readonly messagesByRoom = new Map<string, Map<string, PeerMessage>>();
  private roomViews = new Map<string, RoomView>();
  private deviceLists = new Map<string, string[]>();
  private credentials = { userId: "", deviceId: "" };

  private constructor(
    private readonly proc: ChildProcessWithoutNullStreams,
    private readonly storeDir: string,
    private readonly ownsStore: boolean,
    private readonly requestTimeoutMs: number,
  ) {
    createInterface({ input: proc.stdout }).on("line", (line) => this.onLine(line));
    proc.stderr.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-STDERR_TAIL_CHARS);
    });
    this.exit = new Promise((resolve) => {
      proc.on("close", (code, signal) => {
        this.exited ??= new PeerError(
          "PEER_EXITED",
          `nio process exited (${signal ?? code})${this.stderrTail ? `; stderr:\n${redactTokens(this.stderrTail)}` : ""}`,
        );
        for (const p of this.pending.values()) p.reject(this.exited);
        this.pending.clear();
        resolve();
      });
    });
    proc.on("error", (e) => {
      this.exited ??= new PeerError("PEER_EXITED", `cannot run ${PYTHON}: ${e.message}`);
      for (const p of this.pending.values()) p.reject(this.exited);
      this.pending.clear();
    });
    // A write after the process died must surface as PEER_EXITED, not as an unhandled EPIPE.
    proc.stdin.on("error", () => {});
  }

  get userId(): string {
    return this.credentials.userId;
  }

  get deviceId(): string {
    return this.credentials.deviceId;
  }

  /** The Python process's ID (tests check it is gone after `close()`). */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Registers `username` (nio sends UIA `m.login.dummy`) and returns its first device, keys uploaded. */
  static async register(
    baseUrl: string,
    username: string,
    password: string,
    options: NioPeerOptions = {},
  ): Promise<NioPeer> {
    const peer = await NioPeer.spawn(baseUrl, options);
    return peer.start(() => peer.request("register", { username, password }));
  }

  /** Logs in with a password (a new device unless `options.deviceId` names an existing one). */
  static async login(
    baseUrl: string,
    username: string,
    password: string,
    options: NioPeerOptions = {},
  ): Promise<NioPeer> {
    const peer = await NioPeer.spawn(baseUrl, options);
    return peer.start(() =>
      peer.request("login", {
        username,
        password,
        ...(options.deviceId ? { device_id: options.deviceId } : {}),
      }),
    );
  }

  private static async spawn(baseUrl: string, options: NioPeerOptions): Promise<NioPeer> {
    const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), "keyroom-nio-")));
    const proc = spawn(PYTHON, [SCRIPT, baseUrl, storeDir], { stdio: ["pipe", "pipe", "pipe"] });
    return new NioPeer(
      proc,
      storeDir,
      options.storeDir === undefined,
      options.requestTimeoutMs ?? NIO_REQUEST_TIMEOUT_MS,
    );
  }

  /** Authenticates, then runs the first sync (which uploads the device keys). Closes on failure. */
  private async start(auth: () => Promise<{ userId: string; deviceId: string }>): Promise<NioPeer> {
    try {
      this.credentials = await auth();
      await this.syncOnce(0);
      return this;
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  /**
   * One `/sync` (long-polling up to `timeoutMs`), then nio's key housekeeping: queued to-device
   * messages, keys upload / query / claim as nio asks, and re-decryption of held-back events.
   */
  async syncOnce(timeoutMs = 0): Promise<void> {
    const res = await this.request("sync", { timeout_ms: timeoutMs });
    this.remember(res.messages);
    this.roomViews = new Map(res.rooms.map((r) => [r.roomId, r]));
    this.deviceLists = new Map(Object.entries(res.devices));
  }

  /** After the homeserver was unreachable: one sync that succeeds (nio only syncs when asked). */
  async resumeSync(): Promise<void> {
    await this.syncOnce(0);
  }

  /** Starts SAS with a device (nio's flow: a start without a request); returns the transaction ID. */
  async startSas(userId: string, deviceId: string): Promise<string> {
    return (await this.request("sas_start", { user_id: userId, device_id: deviceId })).transactionId;
  }

  /** Syncs until a verification satisfies `predicate` (nio answers verification events as it syncs); returns it. */
  async waitForSas(predicate: (s: NioSas) => boolean, timeoutMs = DEFAULT_PEER_TIMEOUT_MS): Promise<NioSas> {
    const left = budget(timeoutMs);
    for (;;) {
      const found = (await this.sasList()).find(predicate);
      if (found !== undefined) return found;
      if (left.over()) {
        throw new PeerError(
          "TIMEOUT",
          `${this.userId}: no verification reached the expected state (after ${left.spentMs()} ms)`,
        );
      }
      await this.syncOnce(Math.max(0, Math.min(left.leftMs(), MAX_POLL_MS)));
    }
  }

  /** The verifications nio holds now (no sync). */
  async sasList(): Promise<NioSas[]> {
    return (await this.request("sas_list", {})).verifications;
  }

  async acceptSas(transactionId: string): Promise<void> {
    await this.request("sas_accept", { transaction_id: transactionId });
  }

  async confirmSas(transactionId: string): Promise<void> {
    await this.request("sas_confirm", { transaction_id: transactionId });
  }

  /** The user says the SAS differs: nio cancels with `m.mismatched_sas` (only once the keys were exchanged). */
  async rejectSas(transactionId: string): Promise<void> {
    await this.request("sas_reject", { transaction_id: transactionId });
  }

  /** The user cancels: nio cancels with `m.user`. */
  async cancelSas(transactionId: string): Promise<void> {
    await this.request("sas_cancel", { transaction_id: transactionId });
  }

  /** Whether nio marked the device verified (it does when a SAS with it succeeded). */
  async deviceVerified(userId: string, deviceId: string): Promise<boolean> {
    return (await this.request("device_verified", { user_id: userId, device_id: deviceId })).verified;
  }

  async identityKeys(): Promise<IdentityKeys> {
    return this.request("identity_keys", {});
  }

  async createRoom(options: CreateRoomOptions = {}): Promise<string> {
    const { roomId } = await this.request("create_room", {
      encrypted: options.encrypted === true,
      invite: options.invite ?? [],
      ...(options.name ? { name: options.name } : {}),
    });
    await this.syncUntil(
      () => this.isJoined(roomId) && (!options.encrypted || this.roomViews.get(roomId)?.encrypted === true),
      DEFAULT_PEER_TIMEOUT_MS,
      () => `${this.userId}: created ${roomId} but sync never showed it`,
    );
    return roomId;
  }

  async join(roomId: string): Promise<void> {
    await this.request("join", { room_id: roomId });
    await this.syncUntil(
      () => this.isJoined(roomId),
      DEFAULT_PEER_TIMEOUT_MS,
      () => `${this.userId}: joined ${roomId} but sync never showed it`,
    );
  }

  async invite(roomId: string, userId: string): Promise<void> {
    await this.request("invite", { room_id: roomId, user_id: userId });
  }

  async leave(roomId: string): Promise<void> {
    await this.request("leave", { room_id: roomId });
    await this.syncUntil(
      () => this.membershipOf(roomId, this.userId) === "leave",
      DEFAULT_PEER_TIMEOUT_MS,
      () => `${this.userId}: left ${roomId} but sync never showed it`,
    );
  }

  async sendText(roomId: string, body: string): Promise<string> {
    // Catch up first, as an always-syncing client would have: new members, their devices, keys.
    await this.syncOnce(0);
    if (!this.isJoined(roomId)) {
      await this.syncUntil(
        () => this.isJoined(roomId),
        DEFAULT_PEER_TIMEOUT_MS,
        () => `${this.userId}: not joined to ${roomId}`,
      );
    }
    const { eventId } = await this.request("send_text", { room_id: roomId, body });
    return eventId;
  }

  /** Messages of `roomId` this peer has synced so far, in arrival order. */
  messages(roomId: string): PeerMessage[] {
    return [...(this.messagesByRoom.get(roomId)?.values() ?? [])];
  }

  async waitForMessage(
    roomId: string,
    predicate: (m: PeerMessage) => boolean,
    timeoutMs = DEFAULT_PEER_TIMEOUT_MS,
  ): Promise<PeerMessage> {
    let found: PeerMessage | undefined;
    await this.syncUntil(
      () => {
        found = this.messages(roomId).find(predicate);
        return found !== undefined;
      },
      timeoutMs,
      () => {
        const seen = this.messages(roomId);
        const utd = seen.filter((m) => m.encrypted && !m.decrypted).length;
        return `${this.userId}: no matching message in ${roomId} (${seen.length} seen, ${utd} undecryptable)`;
      },
    );
    return found!;
  }

  /** `"leave"` is satisfied once nio's view of the room no longer lists `userId`. */
  async waitForMembership(
    roomId: string,
    userId: string,
    membership: Membership,
    timeoutMs = DEFAULT_PEER_TIMEOUT_MS,
  ): Promise<void> {
    await this.syncUntil(
      () => this.membershipOf(roomId, userId) === membership,
      timeoutMs,
      () => `${this.userId}: ${userId} never became "${membership}" in ${roomId}`,
    );
  }

  /** The device IDs of `userId` that nio knows (not deleted), after catching up with one sync. */
  async knownDevices(userId: string): Promise<string[]> {
    await this.syncOnce(0);
    return [...(this.deviceLists.get(userId) ?? [])];
  }

  async waitForDevices(
    userId: string,
    predicate: (deviceIds: string[]) => boolean,
    timeoutMs = DEFAULT_PEER_TIMEOUT_MS,
  ): Promise<void> {
    await this.syncUntil(
      () => predicate(this.deviceLists.get(userId) ?? []),
      timeoutMs,
      () => `${this.userId}: the devices of ${userId} never matched`,
    );
  }

  /** Logs this device out (the server deletes it and its keys), then closes the peer. */
  async logout(): Promise<void> {
    await this.request("logout", {});
    await this.close();
  }

  /** nio's own key export (`export_keys`): the standard passphrase-encrypted file. */
  async exportRoomKeys(passphrase: string): Promise<string> {
    return (await this.request("export_keys", { passphrase })).data;
  }

  /** Imports a standard key export file; events that become decryptable show up in `messages()`. */
  async importRoomKeys(data: string, passphrase: string): Promise<void> {
    this.remember((await this.request("import_keys", { data, passphrase })).retried);
  }

  /** Drops the room's outbound Megolm session (nio's `invalidate_outbound_session`): the next send shares a new key. */
  async discardGroupSession(roomId: string): Promise<void> {
    await this.request("discard_group_session", { room_id: roomId });
  }

  /**
   * Syncs until nio decrypted an `m.dummy` from `sender`'s device with Curve25519 key `senderKey`:
   * that device made a new Olm session with this one (to unwedge a broken session).
   */
  async waitForDummy(sender: string, senderKey: string, timeoutMs = DEFAULT_PEER_TIMEOUT_MS): Promise<void> {
    const left = budget(timeoutMs);
    for (;;) {
      const { dummies } = await this.request("dummies_received", {});
      if (dummies.some((d) => d.sender === sender && d.senderKey === senderKey)) return;
      if (left.over()) {
        throw new PeerError(
          "TIMEOUT",
          `${this.userId}: no m.dummy from ${sender} (after ${left.spentMs()} ms)`,
        );
      }
      await this.syncOnce(Math.max(0, Math.min(left.leftMs(), MAX_POLL_MS)));
    }
  }

  /** Simulates a crash: SIGKILLs the Python process (requests then fail with `PEER_EXITED`). */
  kill(): void {
    this.proc.kill("SIGKILL");
  }

  /** Closes the client and ends the process (killing it if it does not exit). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.exited) {
        try {
          await withTimeout(this.request("close", {}), 5_000, () => "nio close");
        } catch {
          // Already dead or stuck: the kill below settles it.
        }
        this.proc.stdin.end();
        try {
          await withTimeout(this.exit, 5_000, () => "nio exit");
        } catch {
          this.proc.kill("SIGKILL");
          await this.exit;
        }
      }
      if (this.ownsStore) await rm(this.storeDir, { recursive: true, force: true });
    })();
    return this.closing;
  }

  private isJoined(roomId: string): boolean {
    return this.roomViews.get(roomId)?.membership === "join";
  }

  private membershipOf(roomId: string, userId: string): Membership | undefined {
    const view = this.roomViews.get(roomId);
    if (!view) return userId === this.userId ? "leave" : undefined;
    if (userId === this.userId) return view.membership;
    return view.members[userId] ?? "leave";
  }

  private remember(messages: z.infer<typeof peerMessage>[]): void {
    for (const m of messages) {
      let room = this.messagesByRoom.get(m.roomId);
      if (!room) {
        room = new Map();
        this.messagesByRoom.set(m.roomId, room);
      }
      // A later record for the same event (decrypted once its key arrived) replaces the earlier one.
      room.set(m.eventId, { ...m, body: m.body ?? undefined, sessionId: m.sessionId ?? undefined });
    }
  }

  /** Syncs (long-polling) until `condition` holds, checking it first against what is already known. */
  private async syncUntil(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    const left = budget(timeoutMs);
    while (!condition()) {
      if (left.over()) throw new PeerError("TIMEOUT", `${what()} (after ${left.spentMs()} ms)`);
      await this.syncOnce(Math.max(0, Math.min(left.leftMs(), MAX_POLL_MS)));
    }
  }

  private request<M extends Method>(method: M, params: Record<string, unknown>): Promise<Result<M>> {
    if (this.closing && method !== "close") {
      return Promise.reject(new PeerError("CLOSED", `${this.userId}: peer already closed`));
    }
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    const reply = new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { method, resolve, reject });
    });
    this.proc.stdin.write(`${JSON.stringify({ id, method, params })}\n`);
    return withTimeout(reply, this.requestTimeoutMs, () => `nio ${method}`).then(
      (raw) => {
        const parsed = results[method].safeParse(raw);
        if (!parsed.success) throw new PeerError("PROTOCOL", `nio ${method}: unexpected result shape`);
        return parsed.data as Result<M>;
      },
      (e: unknown) => {
        this.pending.delete(id);
        throw e;
      },
    );
  }

  private onLine(line: string): void {
    let parsed: z.infer<typeof response>;
    try {
      parsed = response.parse(JSON.parse(line));
    } catch {
      this.exited ??= new PeerError("PROTOCOL", "nio process wrote a line that is not a response");
      for (const p of this.pending.values()) p.reject(this.exited);
      this.pending.clear();
      this.proc.kill("SIGKILL");
      return;
    }
    if (parsed.id === null) return;
    const p = this.pending.get(parsed.id);
    if (!p) return;
    this.pending.delete(parsed.id);
    if (parsed.ok) p.resolve(parsed.result);
    else {
      const code = parsed.error.code === "PROTOCOL" ? "PROTOCOL" : "REQUEST_FAILED";
      const { errcode, httpStatus } = parsed.error;
      p.reject(new PeerError(code, `nio ${p.method}: ${parsed.error.message}`, { errcode, httpStatus }));
    }
  }
}
