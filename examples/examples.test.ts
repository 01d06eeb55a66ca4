// The examples in README and docs/ are programs; this runs them so they cannot rot.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startDevServer } from "../src/devserver/index.ts";
import { run as cryptoBasics } from "./crypto-basics.ts";
import { run as deviceIds } from "./device-ids.ts";
import { run as encryption } from "./encryption.ts";
import { run as quickStart } from "./quick-start.ts";
import type { ExampleEnv } from "./support.ts";

test("examples/crypto-basics: Olm and Megolm round trips", () => {
  assert.deepEqual(cryptoBasics(), ["hello", "to everyone #0"]);
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
