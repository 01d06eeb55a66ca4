// The demo behind `keyroom demo` / `npm start`: an in-memory devserver, two users, one room, a few
// messages each way, a restart of one client from its stores and a read of the history. With
// `encryption` the room is encrypted and every line says whether the message decrypted and how much
// the sender's device is trusted.
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDevServer } from "../devserver/index.ts";
import { FileClientStore, MatrixClient, type RoomEvent } from "../index.ts";

export interface DemoOptions {
  /** Encrypted room and clients with crypto stores (default true). */
  encryption?: boolean;
  /** Where the two users' stores go; default a temporary directory, removed afterwards. */
  storeDir?: string;
  /** Receives each line of the narration. */
  log?: (line: string) => void;
}

export interface DemoResult {
  roomId: string;
  /** What each user saw, as `sender: body` lines, live and (for Bob) after the restart. */
  seen: { alice: string[]; bob: string[]; bobAfterRestart: string[] };
}

interface DemoUser {
  name: string;
  client: MatrixClient;
  /** Messages received live, as printed. */
  seen: string[];
}

const PASSWORD = "keyroom-demo";

function describe(ev: RoomEvent): string {
  const body = typeof ev.content.body === "string" ? ev.content.body : `[${ev.type}]`;
  const info = ev.encryption;
  const how =
    info === undefined
      ? "plaintext"
      : info.decrypted
        ? `encrypted, decrypted, sender device ${info.senderDeviceId ?? "?"} trust: ${info.trust ?? "unknown"}`
        : `encrypted, NOT decrypted (${info.code})`;
  return `${ev.sender}: ${JSON.stringify(body)} (${how})`;
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const encryption = options.encryption ?? true;
  const log = options.log ?? (() => {});
  const ownDir = options.storeDir === undefined;
  const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), "keyroom-demo-")));
  const server = await startDevServer({ port: 0, memory: true });
  const open: MatrixClient[] = [];
  const makeClient = (name: string): MatrixClient => {
    const dir = join(storeDir, name);
    const client = new MatrixClient({
      homeserverUrl: server.baseUrl,
      store: new FileClientStore(join(dir, "client.json")),
      syncTimeoutMs: 0,
      ...(encryption ? { encryption: { store: { directory: join(dir, "crypto") } } } : {}),
    });
    open.push(client);
    return client;
  };
  const watch = (user: DemoUser, roomId: () => string | undefined): void => {
    user.client.on("room.event", (_room, ev) => {
      if (ev.roomId !== roomId() || (ev.type !== "m.room.message" && ev.type !== "m.room.encrypted")) return;
      const line = describe(ev);
      user.seen.push(line);
      log(`  ${user.name} sees  ${line}`);
    });
  };
  try {
    log(`devserver running at ${server.baseUrl} (in memory)`);
    log(`stores in ${storeDir}`);
    let roomId: string | undefined;
    const users: DemoUser[] = [];
    for (const name of ["alice", "bob"]) {
      await mkdir(join(storeDir, name), { recursive: true });
      const client = makeClient(name);
      await client.register({ username: name, password: PASSWORD });
      const user: DemoUser = { name, client, seen: [] };
      watch(user, () => roomId);
      users.push(user);
      log(`registered ${client.userId} (device ${client.deviceId})`);
      if (encryption) log(`  ${name}'s device fingerprint (Ed25519): ${client.getFingerprint()}`);
    }
    const [alice, bob] = users as [DemoUser, DemoUser];
    const syncBoth = async () => {
      await alice.client.syncOnce({ timeoutMs: 0 });
      await bob.client.syncOnce({ timeoutMs: 0 });
    };
    await syncBoth();

    roomId = await alice.client.createRoom({
      name: "Keyroom demo",
      encrypted: encryption,
      invite: [bob.client.userId],
    });
    log(`alice created ${encryption ? "an encrypted" : "a plaintext"} room ${roomId} and invited bob`);
    await bob.client.joinRoom(roomId);
    log("bob joined");
    await syncBoth();

    if (encryption) {
      // Evidence of the key exchange: room keys arrive as Olm-encrypted to-device messages.
      for (const user of users) {
        user.client.on("toDevice", (ev) => {
          if (ev.type !== "m.room_key") return;
          const session =
            typeof ev.content.session_id === "string" ? ev.content.session_id.slice(0, 10) : "?";
          log(`  ${user.name} received a Megolm room key (session ${session}…) from ${ev.sender} over Olm`);
        });
      }
    }
    const say = async (from: DemoUser, text: string) => {
      log(`${from.name} sends ${JSON.stringify(text)}`);
      await from.client.sendText(roomId as string, text);
      await syncBoth();
    };
    await say(alice, "Hello Bob! Can you read this?");
    await say(bob, "Loud and clear, Alice.");
    if (encryption) {
      // Out of band (in person, over the phone), Bob compares the fingerprint Alice reads to him.
      const device = (await bob.client.getUserDevices(alice.client.userId)).find(
        (d) => d.deviceId === alice.client.deviceId,
      );
      if (device === undefined) throw new Error("bob's client does not know alice's device");
      const match = device.ed25519 === alice.client.getFingerprint();
      log(`bob compares alice's fingerprint ${device.ed25519}: ${match ? "it matches" : "MISMATCH"}`);
      if (match) {
        await bob.client.verifyDevice(alice.client.userId, alice.client.deviceId);
        log("bob marks alice's device as verified");
      }
    }
    await say(alice, "Let's restart your client and check the history.");

    log("bob's client closes and starts again from its stores (same device, no new login)");
    const bobStore = new FileClientStore(join(storeDir, "bob", "client.json"));
    await bob.client.close();
    const bobAgain = await MatrixClient.fromStore(bobStore, {
      syncTimeoutMs: 0,
      ...(encryption ? { encryption: { store: { directory: join(storeDir, "bob", "crypto") } } } : {}),
    });
    open.push(bobAgain);
    log(`bob is back as ${bobAgain.userId} (device ${bobAgain.deviceId})`);
    const page = await bobAgain.messages(roomId, { dir: "b", limit: 50 });
    const history = page.events
      .filter((ev) => ev.type === "m.room.message" || ev.type === "m.room.encrypted")
      .reverse()
      .map(describe);
    log("bob reads the room history:");
    for (const line of history) log(`  ${line}`);
    return { roomId, seen: { alice: alice.seen, bob: bob.seen, bobAfterRestart: history } };
  } finally {
    for (const client of open) await client.close().catch(() => {});
    await server.close();
    if (ownDir) await rm(storeDir, { recursive: true, force: true });
  }
}
