/**
 * Olm-encrypted to-device payloads of every type the engine handles, from a real Olm session, with
 * hostile fields (ill-formed Unicode, long strings, odd numbers, deep nesting, `__proto__` keys,
 * wrong types), from our own verified device and from another user's device. Each sync step
 * must end with a typed outcome and save (a value the store refuses fails the step on every
 * retry), what it saved must read back the same after a restart, nothing another user sends may
 * be taken as a forwarded key or a secret, and genuine traffic still decrypts afterwards.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import type { ExportedRoomKey } from "../../crypto/key-export/index.ts";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { randomBytes } from "../../crypto/primitives/index.ts";
import { type CryptoStore, SqliteCryptoStore } from "../../store/index.ts";
import { MEGOLM_ALGORITHM, OLM_ALGORITHM } from "../devices/device.ts";
import { OlmMachine } from "../machine.ts";
import { signWithAccount } from "../signing.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";
import { BUNDLE_FILE, nested } from "../test-support/values.ts";

const ROOM = "!room:x";
const HIDDEN_ROOM = "!hidden:x";
const OTHER_HIDDEN_ROOM = "!hidden2:x";

const STORED_OR_TRUSTED = ["m.room_key", "m.forwarded_room_key", "m.secret.send", "m.room_key_bundle"];

/** Room keys to share (a pool: each may be shared several times, merged into one copy). */
const SESSIONS = Array.from({ length: 16 }, () => OutboundGroupSession.create());

const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    "",
    "\uD800",
    "a\uDFFFb",
    "x".repeat(5000),
    -1,
    1.5,
    2 ** 53,
    1e300,
    -0,
    true,
    null,
    [],
    {},
    JSON.parse('{"__proto__":{"polluted":1}}'),
    "__proto__",
    "toString",
  ),
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.jsonValue({ maxDepth: 2 }),
  // Deeper than the store keeps (MAX_STORED_JSON_DEPTH, 32), and than an event may be (128).
  { weight: 2, arbitrary: fc.integer({ min: 20, max: 140 }).map(nested) },
);

const isPlainObject = (v: unknown): boolean => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * How one field is spoiled: a hostile value, left out, or (an object) valid with a hostile field
 * added (a sender may add any), or spoiled inside in turn.
 */
function spoiled(v: unknown): fc.Arbitrary<unknown> {
  const object = isPlainObject(v);
  return fc.oneof(
    { weight: 3, arbitrary: hostile },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: object ? 3 : 0, arbitrary: hostile.map((h) => ({ ...(v as object), extra: h })) },
    {
      weight: object ? 2 : 0,
      arbitrary: fc.constant(null).chain(() => mutated(v as Record<string, unknown>)),
    },
  );
}

/**
 * `template` with up to two fields spoiled (the others stay valid, so the checks behind the first
 * ones are reached too), and maybe a hostile extra field.
 */
function mutated(template: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(template);
  return fc
    .subarray(keys, { maxLength: Math.min(2, keys.length) })
    .chain((chosen) =>
      fc.tuple(
        fc.tuple(...chosen.map((k) => spoiled(template[k]).map((v) => [k, v] as const))),
        fc.option(fc.tuple(fc.constantFrom("extra", "__proto__", "file", "body"), hostile), { freq: 2 }),
      ),
    )
    .map(([changes, extra]) => {
      const out: Record<string, unknown> = { ...template };
      for (const [k, v] of changes) {
        if (v === undefined) delete out[k];
        else out[k] = v;
      }
      if (extra !== null) Object.defineProperty(out, extra[0], { value: extra[1], enumerable: true });
      return out;
    });
}

/** Where Bob keeps his state: the memory store, or a SQLite file (reopened by `restart`). */
type Backend = { readonly name: string; readonly open: (() => Promise<CryptoStore>) | undefined };

/** Bob's engine reopened on the same store, as after a process restart. */
async function restart(bob: TestClient, backend: Backend): Promise<void> {
  if (backend.open === undefined) return bob.restart();
  await bob.machine.close();
  await bob.store.close();
  bob.store = await backend.open();
  bob.machine = await OlmMachine.open({ ...bob.options, store: bob.store });
}

async function world(backend: Backend) {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  if (backend.open !== undefined) {
    // Bob's device is made anew on the other store: its keys replace the first ones on the server.
    hs.exhaustOneTimeKeys("@bob:x", "B");
    await bob.machine.close();
    await bob.store.close();
    bob.store = await backend.open();
    bob.machine = await OlmMachine.open({ ...bob.options, store: bob.store });
    await bob.flush();
  }
  const b2 = new RawOlmPeer("@bob:x", "B2");
  const eve = new RawOlmPeer("@eve:x", "E");
  b2.publish(hs);
  eve.publish(hs);
  await bob.machine.updateTrackedUsers(["@alice:x", "@bob:x", "@eve:x"]);
  await bob.sync();
  // Bob verified both: a device of another user is still never a source of forwards or secrets.
  await bob.machine.setDeviceTrust("@bob:x", "B2", "verified");
  await bob.machine.setDeviceTrust("@eve:x", "E", "verified");
  // Room keys Bob lacks (Alice shared them with nobody): he asks his own devices for them. Each
  // sender forwards its own, so one's forward never closes the other's request.
  const hiddenKeys = [];
  for (const room of [HIDDEN_ROOM, OTHER_HIDDEN_ROOM]) {
    const hidden = await alice.sendMessage(room, joined("@alice:x"), "hidden");
    await assert.rejects(bob.machine.decryptRoomEvent(hidden, room), { code: "UNKNOWN_SESSION" });
    const [key] = await alice.machine.exportRoomKeys([room]);
    assert.ok(key);
    hiddenKeys.push(key);
  }
  await bob.flush();
  // Secrets he lacks: asked of his own devices too.
  await bob.machine.requestSecrets();
  await bob.flush();
  const first = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "first");
  await bob.sync();
  assert.equal((await bob.machine.decryptRoomEvent(first, ROOM)).content.body, "first");
  return { hs, alice, bob, b2, eve, hiddenKeys, first };
}

type World = Awaited<ReturnType<typeof world>>;

/** A valid content of each type, for `from` to send Bob. */
function templates(
  w: World,
  from: RawOlmPeer,
): fc.Arbitrary<{ type: string; content: Record<string, unknown> }> {
  const now = Date.now();
  const hiddenKey = w.hiddenKeys[from === w.b2 ? 0 : 1] as ExportedRoomKey;
  const byType: Record<string, Record<string, unknown>> = {
    "m.room_key": {
      algorithm: MEGOLM_ALGORITHM,
      room_id: ROOM,
      session_id: "",
      session_key: "",
      "org.matrix.msc3061.shared_history": true,
    },
    "m.forwarded_room_key": {
      algorithm: MEGOLM_ALGORITHM,
      room_id: hiddenKey.room_id,
      session_id: hiddenKey.session_id,
      session_key: hiddenKey.session_key,
      sender_key: hiddenKey.sender_key,
      sender_claimed_ed25519_key: hiddenKey.sender_claimed_keys.ed25519,
      forwarding_curve25519_key_chain: [],
    },
    "m.room_key.withheld": {
      algorithm: MEGOLM_ALGORITHM,
      code: "m.unverified",
      reason: "no",
      room_id: ROOM,
      session_id: "",
      sender_key: from.curve25519,
    },
    "m.room_key_request": {
      action: "request",
      request_id: "r1",
      requesting_device_id: from.deviceId,
      body: { algorithm: MEGOLM_ALGORITHM, room_id: ROOM, session_id: hiddenKey.session_id },
    },
    "m.secret.request": {
      action: "request",
      name: "m.megolm_backup.v1",
      request_id: "s1",
      requesting_device_id: from.deviceId,
    },
    "m.secret.send": { request_id: OUTSTANDING, secret: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0" },
    "m.room_key_bundle": { room_id: ROOM, file: BUNDLE_FILE },
    "m.key.verification.request": {
      from_device: from.deviceId,
      methods: ["m.sas.v1"],
      timestamp: now,
      transaction_id: "t1",
    },
    "m.key.verification.start": {
      from_device: from.deviceId,
      method: "m.sas.v1",
      key_agreement_protocols: ["curve25519-hkdf-sha256"],
      hashes: ["sha256"],
      message_authentication_codes: ["hkdf-hmac-sha256.v2"],
      short_authentication_string: ["decimal", "emoji"],
      transaction_id: "t1",
    },
    "m.key.verification.cancel": { code: "m.user", reason: "no", transaction_id: "t1" },
    "m.key.verification.mac": { mac: { "ed25519:E": "x" }, keys: "y", transaction_id: "t1" },
  };
  return fc
    .tuple(
      // The types whose content is stored or trusted come up twice as often.
      fc.constantFrom(...Object.keys(byType), ...STORED_OR_TRUSTED),
      fc.constantFrom(...SESSIONS),
    )
    .chain(([type, megolm]) => {
      const template = { ...(byType[type] as Record<string, unknown>) };
      if (type === "m.room_key" || type === "m.room_key.withheld") template.session_id = megolm.sessionId;
      if (type === "m.room_key") template.session_key = megolm.sessionKey();
      return mutated(template).map((content) => ({ type, content }));
    });
}

/** The Olm payload, its envelope fields mutated too, with the sender's self-signed device keys. */
function payloadArb(w: World, from: RawOlmPeer): fc.Arbitrary<Record<string, unknown>> {
  const deviceKeys = signWithAccount(from.account, from.userId, from.deviceId, {
    user_id: from.userId,
    device_id: from.deviceId,
    algorithms: [OLM_ALGORITHM],
    keys: { [`curve25519:${from.deviceId}`]: from.curve25519, [`ed25519:${from.deviceId}`]: from.ed25519 },
  });
  return templates(w, from).chain(({ type, content }) =>
    fc
      .record({
        sender_device: fc.oneof({ weight: 10, arbitrary: fc.constant(from.deviceId) }, hostile),
        sender_device_keys: fc.oneof(
          { weight: 10, arbitrary: fc.constant<unknown>(deviceKeys) },
          { weight: 1, arbitrary: fc.constant<unknown>({ ...deviceKeys, extra: nested(40) }) },
          hostile,
        ),
      })
      .map((envelope) => ({
        ...w.b2.payload(w.bob, type, content),
        ...envelope,
        sender: from.userId,
        keys: { ed25519: from.ed25519 },
      })),
  );
}

/** Stands for the ID of Bob's request for the backup key still open (see `askForBackupKey`). */
const OUTSTANDING = "outstanding-request";

/**
 * Bob asks his devices for the backup key (a secret the engine hands to the client rather than
 * checking it); the request's ID. Asked again whenever answered or forgotten (a restart).
 */
async function askForBackupKey(bob: TestClient, hs: FakeHomeserver): Promise<string> {
  await bob.machine.requestSecrets(["m.megolm_backup.v1"]);
  await bob.flush();
  const id = hs.sentToDevice.findLast(
    (m) => m.eventType === "m.secret.request" && m.content.name === "m.megolm_backup.v1",
  )?.content.request_id;
  assert.ok(typeof id === "string");
  return id;
}

/** What Bob holds that must read back the same from his store. */
async function snapshot(bob: TestClient): Promise<string> {
  const keys = (await bob.machine.exportRoomKeys()).map((k) => JSON.stringify(k)).sort();
  const devices = [];
  for (const user of ["@alice:x", "@bob:x", "@eve:x"]) {
    for (const d of await bob.machine.getUserDevices(user))
      devices.push([user, d.deviceId, d.trust, d.ed25519]);
  }
  return JSON.stringify({
    keys,
    devices,
    nextBatch: await bob.store.getNextBatch(),
    bundles: await bob.store.getCustomValue("keyroom.history_sharing.v1"),
    identity: bob.machine.identityKeys,
    crossSigning: await bob.machine.crossSigningStatus(),
  });
}

const directory = mkdtempSync(join(tmpdir(), "keyroom-hostile-olm-"));
after(() => rmSync(directory, { recursive: true, force: true }));
const sqliteKey = randomBytes(32);
const BACKENDS: readonly (Backend & { readonly runs: number })[] = [
  { name: "the memory store", open: undefined, runs: 1500 },
  {
    name: "SQLite",
    open: () => SqliteCryptoStore.open({ userId: "@bob:x", deviceId: "B", directory, key: sqliteKey }),
    runs: 600,
  },
];

describe("hostile Olm payloads of every type", () => {
  for (const backend of BACKENDS)
    it(`on ${backend.name}: typed outcomes, every step saves and reads back the same, nothing taken from another user`, async () => {
      const w = await world(backend);
      const { bob, hs, b2, eve } = w;
      let batch = 0;
      let backupRequest = await askForBackupKey(bob, hs);
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            payloadArb(w, b2).map((p) => ({ from: b2, p })),
            payloadArb(w, eve).map((p) => ({ from: eve, p })),
          ),
          fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
          async ({ from, p }, reopen) => {
            const nextBatch = `h${++batch}`;
            const content = p.content as Record<string, unknown>;
            if (content.request_id === OUTSTANDING) content.request_id = backupRequest;
            const result = await bob.machine.receiveSyncChanges({
              toDevice: [from.encrypt(hs, bob, p)],
              nextBatch,
            });
            await bob.flush();
            assert.equal(await bob.store.getNextBatch(), nextBatch, "the step was saved");
            for (const e of result.toDevice) {
              assert.doesNotThrow(() => structuredClone(e));
              assert.equal(typeof JSON.stringify(e), "string");
            }
            if (from === eve) {
              assert.deepEqual(result.secrets, [], "no secret from another user");
              if (p.type !== "m.room_key") assert.deepEqual(result.roomKeys, [], "no key but a direct share");
            }
            if (reopen) {
              const before = await snapshot(bob);
              await restart(bob, backend);
              assert.equal(await snapshot(bob), before, "the same after a restart");
            }
            if (reopen || result.secrets.length > 0) backupRequest = await askForBackupKey(bob, hs);
          },
        ),
        { seed: 4268, numRuns: backend.runs },
      );
      // Alice's next message still decrypts.
      const event = await w.alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "genuine");
      assert.deepEqual((await bob.sync()).failures, []);
      assert.equal((await bob.machine.decryptRoomEvent(event, ROOM)).content.body, "genuine");
      assert.equal((await bob.machine.decryptRoomEvent(w.first, ROOM)).content.body, "first");
      await bob.machine.close();
      await bob.store.close();
    });
});
