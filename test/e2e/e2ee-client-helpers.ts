// Shared helpers of the encrypted-client tests: clients with SQLite stores in a temp directory,
// syncing, collecting what they emit, and SAS between two of them.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import {
  type EncryptionOptions,
  type FetchLike,
  MatrixClient,
  type RoomEvent,
  type VerificationRequest,
} from "../../src/client/index.ts";
import { budget } from "../support/budget.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

let n = 0;
export const uniq = (p: string): string => `${p}${++n}${Date.now().toString(36)}`;

export interface TestClient {
  client: MatrixClient;
  /** Timeline events as emitted (`room.event`). */
  events: RoomEvent[];
  /** Events decrypted after their first emission (`room.decrypted`). */
  late: RoomEvent[];
  /** Events undecryptable anew after their first emission: their key withheld (`room.undecryptable`). */
  withheld: RoomEvent[];
  name: string;
  storeDir: string;
}

export function watch(client: MatrixClient, name: string, storeDir: string): TestClient {
  const t: TestClient = { client, events: [], late: [], withheld: [], name, storeDir };
  client.on("room.event", (_room, ev) => void t.events.push(ev));
  client.on("room.decrypted", (_room, ev) => void t.late.push(ev));
  client.on("room.undecryptable", (_room, ev) => void t.withheld.push(ev));
  return t;
}

export function encryptedClient(
  hs: TestDevServer,
  storeDir: string,
  extra: Omit<EncryptionOptions, "store"> = {},
  fetch?: FetchLike,
): MatrixClient {
  return new MatrixClient({
    homeserverUrl: hs.baseUrl,
    syncTimeoutMs: 0,
    syncFilter: { room: { timeline: { limit: 100 } } },
    encryption: { store: { directory: storeDir }, ...extra },
    ...(fetch !== undefined ? { fetch } : {}),
  });
}

/**
 * Registers a new user with an encrypted client (SQLite store under `dir/<name>`), whose requests
 * go through `fetch` when given (to hold or drop some).
 */
export async function newUser(
  hs: TestDevServer,
  dir: string,
  prefix: string,
  extra: Omit<EncryptionOptions, "store"> = {},
  fetch?: FetchLike,
): Promise<TestClient> {
  const name = uniq(prefix);
  const storeDir = join(dir, name);
  const client = encryptedClient(hs, storeDir, extra, fetch);
  await client.register({ username: name, password: "pw" });
  return watch(client, name, storeDir);
}

/** One sync round for each client, in order. */
export async function syncAll(...clients: TestClient[]): Promise<void> {
  for (const c of clients) await c.client.syncOnce({ timeoutMs: 0 });
}

/**
 * Re-checks `pred` after each sync response `client`'s own sync loop handled (`sync.settle`),
 * until it holds: for a client that syncs in the background (`startSync`, a bot).
 */
export async function settledUntil(
  client: MatrixClient,
  pred: () => boolean | Promise<boolean>,
): Promise<void> {
  for (;;) {
    // Listening before checking: a sync handled while `pred` runs is not missed.
    let off = () => {};
    const settled = new Promise<void>((resolve) => {
      off = client.on("sync.settle", () => resolve());
    });
    try {
      if (await pred()) return;
      await settled;
    } finally {
      off();
    }
  }
}

/** The text bodies this client received in a room, decrypted ones only, in order. */
export function texts(t: TestClient, roomId: string): string[] {
  const out: string[] = [];
  for (const ev of [...t.events, ...t.late]) {
    if (ev.roomId !== roomId || ev.type !== "m.room.message") continue;
    if (typeof ev.content.body === "string") out.push(ev.content.body);
  }
  return out;
}

/** The emitted event with this ID (the last emission wins: a late decryption replaces the failure). */
export function eventById(t: TestClient, eventId: string): RoomEvent {
  const found = [...t.events, ...t.late].filter((e) => e.eventId === eventId);
  const ev = found[found.length - 1];
  assert.ok(ev, `no event ${eventId} was emitted`);
  return ev;
}

/** Creates an encrypted room by `owner`, invites and joins `others`, and syncs everyone. */
export async function sharedRoom(
  owner: TestClient,
  others: TestClient[],
  opts: { historyVisibility?: string } = {},
): Promise<string> {
  const roomId = await owner.client.createRoom({
    name: "secret",
    invite: others.map((o) => o.client.userId),
    ...(opts.historyVisibility !== undefined
      ? {
          initialState: [
            {
              type: "m.room.history_visibility",
              state_key: "",
              content: { history_visibility: opts.historyVisibility },
            },
          ],
        }
      : {}),
  });
  for (const o of others) {
    await o.client.syncOnce({ timeoutMs: 0 });
    await o.client.joinRoom(roomId);
  }
  await syncAll(owner, ...others);
  return roomId;
}

/**
 * One test file's devserver and temp directory. Clients pushed on `open` and peers (other SDKs'
 * devices) pushed on `peers` are closed after it: the clients stop syncing first, then the peers
 * close, then the clients.
 */
export interface DevServerFixture {
  readonly hs: TestDevServer;
  readonly dir: string;
  readonly open: MatrixClient[];
  readonly peers: { close(): Promise<void> }[];
}

/** Registers `before` / `after` hooks that start and tear down a {@link DevServerFixture}. */
export function devServerFixture(prefix: string): DevServerFixture {
  const state: {
    hs?: TestDevServer;
    dir?: string;
    open: MatrixClient[];
    peers: { close(): Promise<void> }[];
  } = { open: [], peers: [] };
  before(async () => {
    state.hs = await startTestDevServer();
    state.dir = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    for (const c of state.open) await c.stopSync().catch(() => undefined);
    for (const p of state.peers) await p.close().catch(() => undefined);
    for (const c of state.open) await c.close().catch(() => undefined);
    await state.hs?.close();
    if (state.dir !== undefined) await rm(state.dir, { recursive: true, force: true });
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the devserver fixture is used before its before() hook ran");
    return value;
  };
  return {
    get hs() {
      return started(state.hs);
    },
    get dir() {
      return started(state.dir);
    },
    open: state.open,
    peers: state.peers,
  };
}

/**
 * A new encrypted Keyroom device of `name` (password "pw"), with its SQLite store in a fresh folder
 * under `fx.dir`: a new account, or a new login of an existing one. Closed after the test file.
 */
export async function keyroomDevice(
  fx: DevServerFixture,
  name: string,
  how: "register" | "login",
  extra: Omit<EncryptionOptions, "store"> = {},
): Promise<TestClient> {
  const storeDir = join(fx.dir, uniq(name));
  const client = encryptedClient(fx.hs, storeDir, extra);
  fx.open.push(client);
  if (how === "register") await client.register({ username: name, password: "pw" });
  else await client.login({ user: name, password: "pw" });
  return watch(client, name, storeDir);
}

/**
 * {@link newUser} on the fixture's devserver and directory; the client is closed after the test
 * file.
 */
export async function fixtureUser(
  fx: DevServerFixture,
  prefix: string,
  extra: Omit<EncryptionOptions, "store"> = {},
  fetch?: FetchLike,
): Promise<TestClient> {
  const t = await newUser(fx.hs, fx.dir, prefix, extra, fetch);
  fx.open.push(t.client);
  return t;
}

/**
 * Another device of `t`'s user (a new login, password "pw") with an encrypted client whose SQLite
 * store is in `fx.dir/<name>-<suffix>`, its requests going through `fetch` when given; closed after
 * the test file.
 */
export async function fixtureDevice(
  fx: DevServerFixture,
  t: TestClient,
  suffix: string,
  fetch?: FetchLike,
): Promise<TestClient> {
  const storeDir = join(fx.dir, `${t.name}-${suffix}`);
  const client = encryptedClient(fx.hs, storeDir, {}, fetch);
  fx.open.push(client);
  await client.login({ user: t.client.userId, password: "pw" });
  return watch(client, t.name, storeDir);
}

/** The next verification request `client` receives. */
export function nextRequest(client: MatrixClient): Promise<VerificationRequest> {
  return new Promise((resolve) => {
    const off = client.on("verification.request", (r) => {
      off();
      resolve(r);
    });
  });
}

/**
 * `from` and `to` (two users) cross-signed, in a DM `from` made (encrypted or not) that `to` joined
 * once it saw the invite; its room ID.
 */
export async function crossSignedDm(from: TestClient, to: TestClient, encrypted: boolean): Promise<string> {
  await to.client.bootstrapCrossSigning();
  await from.client.bootstrapCrossSigning();
  const roomId = await from.client.createDirectRoom(to.client.userId, { encrypted });
  await to.client.syncOnce({ timeoutMs: 0 });
  await to.client.joinRoom(roomId);
  return roomId;
}

/**
 * `from` asks `to` (another user) to verify, which goes to their DM `roomId`; `to` accepts and both
 * are ready. Both must be syncing.
 */
export async function readyInDm(
  from: TestClient,
  to: TestClient,
  roomId: string,
): Promise<{ outgoing: VerificationRequest; request: VerificationRequest }> {
  const incoming = nextRequest(to.client);
  const outgoing = await from.client.requestVerification(to.client.userId);
  assert.equal(outgoing.roomId, roomId, "the request goes to the DM");
  const request = await incoming;
  await request.accept();
  await outgoing.waitFor((s) => s.phase === "ready");
  return { outgoing, request };
}

/** Polls `check` until it holds; fails the test after a budget of 20 s. */
export async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const b = budget(20_000);
  while (!(await check())) {
    if (b.over()) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `from` asks `to` (another device of the same user) to verify; both confirm SAS. Both must be syncing. */
export async function verifyWithSas(from: MatrixClient, to: MatrixClient): Promise<void> {
  const incoming = nextRequest(to);
  const outgoing = await from.requestVerification(from.userId, to.deviceId as string);
  const request = await incoming;
  await request.accept();
  await outgoing.waitFor((s) => s.phase === "ready");
  await outgoing.startSas();
  await Promise.all([
    outgoing.waitFor((s) => s.sas?.decimals !== undefined),
    request.waitFor((s) => s.sas?.decimals !== undefined),
  ]);
  await Promise.all([outgoing.confirm(), request.confirm()]);
  await Promise.all([outgoing.finished(), request.finished()]);
}

/** Both sides of a SAS compare (the same seven emoji, the same decimals) and confirm; both end done. */
export async function compareAndConfirm(a: VerificationRequest, b: VerificationRequest): Promise<void> {
  const [sa, sb] = await Promise.all([
    a.waitFor((s) => s.sas?.decimals !== undefined || s.phase === "cancelled"),
    b.waitFor((s) => s.sas?.decimals !== undefined || s.phase === "cancelled"),
  ]);
  assert.equal(sa.cancel, undefined);
  assert.equal(sb.cancel, undefined);
  // Both sides offer emoji: seven on each, the same ones (two missing lists would compare equal).
  assert.equal(sa.sas?.emoji?.length, 7);
  assert.deepEqual(sa.sas?.emoji, sb.sas?.emoji);
  assert.deepEqual(sa.sas?.decimals, sb.sas?.decimals);
  await Promise.all([a.confirm(), b.confirm()]);
  const [fa, fb] = await Promise.all([a.finished(), b.finished()]);
  assert.equal(fa.phase, "done", JSON.stringify(fa.cancel));
  assert.equal(fb.phase, "done", JSON.stringify(fb.cancel));
}
