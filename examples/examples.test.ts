// The examples in README and docs/ are programs; this runs them so they cannot rot.
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { startDevServer } from "keyroom/devserver";
import { MemoryCryptoStore, MemoryStoreData } from "keyroom/store";
import { runCryptoStoreConformance } from "keyroom/store/conformance";
import { run as attachments } from "./attachments.ts";
import { run as clientTour } from "./client-tour.ts";
import { run as cryptoBasics } from "./crypto-basics.ts";
import { run as customStore, LoggingCryptoStore } from "./custom-store.ts";
import { run as deviceIds } from "./device-ids.ts";
import { run as encryption } from "./encryption.ts";
import { run as exportImport } from "./export-import.ts";
import { run as keySharing } from "./key-sharing.ts";
import { run as quickStart } from "./quick-start.ts";
import { run as recovery } from "./recovery.ts";
import { run as storeLocation } from "./store-location.ts";
import type { ExampleEnv } from "./support.ts";
import { run as verification } from "./verification.ts";

test("examples/crypto-basics: Olm and Megolm round trips", () => {
  assert.deepEqual(cryptoBasics(), ["hello", "to everyone #0"]);
});

const here = fileURLToPath(new URL(".", import.meta.url));

/** Every `// #region NAME` … `// #endregion NAME` of the example files, dedented, by `file#NAME`. */
async function exampleRegions(): Promise<Map<string, string>> {
  const regions = new Map<string, string>();
  for (const file of (await readdir(here)).filter((f) => f.endsWith(".ts")).sort()) {
    let name: string | undefined;
    let lines: string[] = [];
    for (const line of (await readFile(join(here, file), "utf8")).split("\n")) {
      const start = /^\s*\/\/ #region (\S+)\s*$/.exec(line);
      if (start) {
        name = start[1];
        lines = [];
      } else if (name !== undefined && /^\s*\/\/ #endregion /.test(line)) {
        const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
        regions.set(`${file}#${name}`, lines.map((l) => l.slice(indent)).join("\n"));
        name = undefined;
      } else if (name !== undefined) lines.push(line);
    }
  }
  return regions;
}

/** The bodies of the ```ts blocks of a Markdown file. */
async function tsBlocks(path: string): Promise<string[]> {
  const text = await readFile(path, "utf8");
  return [...text.matchAll(/^```ts\n([\s\S]*?)\n```$/gm)].map((m) => m[1] ?? "");
}

/** Example regions another guide quotes (verbatim, as its only ```ts block) instead of the walk-through. */
const QUOTED_ELSEWHERE: ReadonlyMap<string, string> = new Map([
  ["client-tour.ts#client-tour", "client.md"],
  ["client-tour.ts#sso-login", "client.md"],
  ["client-tour.ts#room-name-formatter", "client.md"],
]);

test("docs/walkthrough.md quotes every example region, verbatim, and nothing else", async () => {
  const regions = await exampleRegions();
  const quoted = new Set(await tsBlocks(join(here, "..", "docs", "walkthrough.md")));
  assert.ok(regions.size > 0 && quoted.size > 0, "example regions and quoted blocks were found");
  for (const block of quoted) {
    assert.ok([...regions.values()].includes(block), `not in any example file:\n${block.slice(0, 300)}`);
  }
  for (const [name, code] of regions)
    if (!QUOTED_ELSEWHERE.has(name))
      assert.ok(quoted.has(code), `docs/walkthrough.md does not quote ${name}`);
});

test("the other guides quote their example regions, verbatim, and nothing else", async () => {
  const regions = await exampleRegions();
  // Each guide's ```ts blocks are its regions, in the order listed.
  for (const doc of new Set(QUOTED_ELSEWHERE.values())) {
    const names = [...QUOTED_ELSEWHERE].filter(([, d]) => d === doc).map(([name]) => name);
    const expected = names.map((name) => regions.get(name));
    assert.deepEqual(await tsBlocks(join(here, "..", "docs", doc)), expected, `docs/${doc}`);
  }
});

test("README's client quick start is the quick-start example, verbatim", async () => {
  const regions = await exampleRegions();
  const readme = await readFile(join(here, "..", "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Client quick start"));
  const block = /```ts\n([\s\S]*?)\n```/.exec(section)?.[1];
  assert.ok(block !== undefined, "README has a ts block under Client quick start");
  assert.equal(block, regions.get("quick-start.ts#quick-start"));
});

let server: Awaited<ReturnType<typeof startDevServer>>;
let root: string;
let n = 0;
/** A devserver shared by the examples, and a fresh directory for each. */
const env = (): ExampleEnv => ({ homeserverUrl: server.baseUrl, dir: join(root, `example-${++n}`) });

before(async () => {
  server = await startDevServer({ memory: true, port: 0 });
  root = await mkdtemp(join(tmpdir(), "keyroom-examples-"));
  // `encryption: true` puts its store under $XDG_DATA_HOME: keep it in the temp directory.
  process.env.XDG_DATA_HOME = join(root, "data-home");
});
after(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

test("examples/quick-start: a message sent by one client is received by the other", async () => {
  assert.equal(await quickStart(env()), "Hello, Bob!");
});

test("examples/client-tour: profile, a reused DM, edit and emote, media, history, an upgrade followed", async () => {
  assert.deepEqual(await clientTour(env()), {
    displayName: "Alice",
    sameDirectRoom: true,
    directRooms: 1,
    history: ["waves", "* Hello, Bob", "Hello"],
    downloaded: "notes",
    followedToUpgrade: true,
    emptyRoomName: "Salon vide",
    offersPasswordLogin: true,
    ssoPage: "/_matrix/client/v3/login/sso/redirect?redirectUrl=https%3A%2F%2Fapp.example%2Fsso-done",
  });
});

test("examples/encryption: two clients chat in an encrypted room; the server sees ciphertext", async () => {
  assert.deepEqual(await encryption(env()), {
    bobRead: "Only Bob can read this",
    aliceRead: "And only Alice this",
    onTheWire: "m.room.encrypted",
    trust: "unverified",
  });
});

test("examples/device-ids: restoreDeviceId and an explicit device ID come back as the same device", async () => {
  const r = await deviceIds(env());
  assert.equal(r.restoredSameDevice, true);
  assert.equal(r.restoredSameKeys, true);
  assert.deepEqual(r.otherDevices, [r.firstDevice]);
  assert.equal(r.explicitDeviceId, "CAROLLAPTOP");
  assert.equal(r.explicitSameKeys, true);
  assert.equal(r.otherDeviceOnStore, "DEVICE_MISMATCH");
});

test("examples/verification: verifyDevices refuses, then verified and ignored devices read, the blacklisted one cannot", async () => {
  const r = await verification(env());
  assert.equal(r.unknown.length, 3);
  assert.equal(r.laptop, "Are you really Bob?");
  assert.equal(r.phone, "Are you really Bob?");
  assert.equal(r.stranger, "WITHHELD");
  assert.equal(r.replyTrust, "verified");
});

test("examples/key-sharing: a new own device gets a key it missed from a verified own device", async () => {
  assert.deepEqual(await keySharing(env()), {
    firstSeen: "UNKNOWN_SESSION",
    later: "Sent before Bob's phone existed",
    laterTrust: "unverified",
  });
});

test("examples/attachments: an encrypted file round trip; the server holds ciphertext only", async () => {
  assert.deepEqual(await attachments(env()), {
    msgtype: "m.image",
    filename: "holiday.png",
    sameBytes: true,
    streamedSameBytes: true,
    serverHasPlaintext: false,
  });
});

test("examples/export-import: a new device reads history after importing a key export", async () => {
  assert.deepEqual(await exportImport(env()), {
    header: "-----BEGIN MEGOLM SESSION DATA-----",
    exportProgress: ["1/1 sessions"],
    importProgress: ["1/1 keys"],
    beforeImport: "UNKNOWN_SESSION",
    imported: 1,
    total: 1,
    afterImport: "Remember this",
  });
});

test("examples/recovery: a new device recovers with the recovery key alone and reads the history", async () => {
  assert.deepEqual(await recovery(env()), {
    statusBefore: "disabled",
    beforeRecovery: "UNKNOWN_SESSION",
    crossSigned: true,
    restored: 1,
    afterRecovery: "Dear diary",
    statusAfter: "enabled",
  });
});

test("examples/custom-store: a client runs on a user-written store, whose log shows each step's save", async () => {
  const r = await customStore(env());
  assert.equal(r.read, "Stored my way");
  assert.ok(
    r.log.some((line) => /^saved .*inboundGroupSessions×1/.test(line)),
    r.log.join("\n"),
  );
  assert.ok(r.log.some((line) => /^saved .*nextBatch/.test(line)));
  assert.equal(r.log.at(-1), "closed");
  // Names and counts only: no pickle, key or token reaches the log.
  assert.ok(
    r.log.every((line) => /^(saved [a-zA-Z×0-9 ]+ in [0-9.]+ ms|closed)$/.test(line)),
    r.log.join("\n"),
  );
});

test("examples/store-location: the store file is where asked; a second process opens it while the bot runs", async () => {
  const r = await storeLocation(env());
  assert.equal(r.fileExists, true);
  assert.deepEqual(r.whileRunning, { deviceId: r.deviceId, roomKeys: 0 });
  assert.deepEqual(r.afterClose, { deviceId: r.deviceId, roomKeys: 0 });
});

// The custom store of examples/custom-store.ts passes the suite every Keyroom store passes.
// #region conformance
runCryptoStoreConformance({
  name: "LoggingCryptoStore (examples/custom-store.ts)",
  encrypted: false,
  bulkCount: 5000,
  async createFixture() {
    const data = new MemoryStoreData();
    return {
      open: async ({ userId, deviceId }) =>
        new LoggingCryptoStore(await MemoryCryptoStore.open({ userId, deviceId, data }), () => {}),
      cleanup: async () => {},
    };
  },
});
// #endregion conformance
