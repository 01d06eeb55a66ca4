// E2EE key endpoints: upload rules, claim order, query visibility, signature checks, device lists.
import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { canonicalJson } from "../../src/devserver/event-format.ts";
import { startTestDevServer, type TestDevServer, type TestUser } from "../support/devserver.ts";

interface Signer {
  pub: string;
  priv: KeyObject;
}

function newKey(): Signer {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(12);
  return { pub: raw.toString("base64").replace(/=+$/, ""), priv: privateKey };
}

type Json = Record<string, unknown>;

function signObj(obj: Json, userId: string, keyId: string, key: Signer): Json {
  const {
    signatures,
    unsigned: _u,
    ...rest
  } = obj as { signatures?: Record<string, Record<string, string>>; unsigned?: unknown };
  const sig = sign(null, Buffer.from(canonicalJson(rest)), key.priv)
    .toString("base64")
    .replace(/=+$/, "");
  const all = structuredClone(signatures ?? {});
  all[userId] = { ...(all[userId] ?? {}), [keyId]: sig };
  return { ...rest, signatures: all };
}

function deviceKeys(u: TestUser, ed: Signer, curve = "curvekey"): Json {
  return signObj(
    {
      user_id: u.userId,
      device_id: u.deviceId,
      algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
      keys: { [`curve25519:${u.deviceId}`]: curve, [`ed25519:${u.deviceId}`]: ed.pub },
    },
    u.userId,
    `ed25519:${u.deviceId}`,
    ed,
  );
}

function csKey(u: TestUser, usage: string, k: Signer): Json {
  return { user_id: u.userId, usage: [usage], keys: { [`ed25519:${k.pub}`]: k.pub } };
}

describe("devserver E2EE keys", () => {
  let s: TestDevServer;
  before(async () => {
    s = await startTestDevServer();
  });
  after(() => s.close());

  it("keys/upload accepts identical re-uploads and rejects changed device keys", async () => {
    const u = await s.register();
    const ed = newKey();
    const dk = deviceKeys(u, ed);
    assert.equal(
      (await s.api("POST", "/keys/upload", { token: u.accessToken, body: { device_keys: dk } })).status,
      200,
    );
    assert.equal(
      (await s.api("POST", "/keys/upload", { token: u.accessToken, body: { device_keys: dk } })).status,
      200,
    );
    const changed = await s.api("POST", "/keys/upload", {
      token: u.accessToken,
      body: { device_keys: deviceKeys(u, ed, "othercurve") },
    });
    assert.equal(changed.status, 400);
    assert.equal(changed.json.errcode, "M_INVALID_PARAM");
    const unsigned = { ...dk, signatures: {} };
    const bad = await s.api("POST", "/keys/upload", {
      token: u.accessToken,
      body: { device_keys: unsigned },
    });
    assert.equal(bad.json.errcode, "M_INVALID_SIGNATURE");
    const other = await s.register();
    const notMine = await s.api("POST", "/keys/upload", {
      token: other.accessToken,
      body: { device_keys: dk },
    });
    assert.equal(notMine.status, 400);
  });

  it("one-time keys: counts, duplicate IDs with other content rejected, claim OTK first then fallback", async () => {
    const u = await s.register();
    const claimer = await s.register();
    const up = await s.api("POST", "/keys/upload", {
      token: u.accessToken,
      body: {
        one_time_keys: { "signed_curve25519:A": { key: "a" }, "signed_curve25519:B": { key: "b" } },
        fallback_keys: { "signed_curve25519:F": { key: "f", fallback: true } },
      },
    });
    assert.deepEqual(up.json.one_time_key_counts, { signed_curve25519: 2 });
    const dup = await s.api("POST", "/keys/upload", {
      token: u.accessToken,
      body: {
        one_time_keys: { "signed_curve25519:A": { key: "different" }, "signed_curve25519:C": { key: "c" } },
      },
    });
    // As Synapse: 400 M_UNKNOWN naming the key ID, and nothing of the upload stored.
    assert.equal(dup.status, 400);
    assert.equal(dup.json.errcode, "M_UNKNOWN");
    assert.match(dup.json.error, /^One time key signed_curve25519:A already exists\. Old key: /);
    // The same key again is accepted, signed anew or not, and held once.
    const again = await s.api("POST", "/keys/upload", {
      token: u.accessToken,
      body: {
        one_time_keys: {
          "signed_curve25519:A": { key: "a", signatures: { [u.userId]: { "ed25519:X": "s" } } },
        },
      },
    });
    assert.deepEqual([again.status, again.json.one_time_key_counts], [200, { signed_curve25519: 2 }]);
    const claim = async () =>
      (
        await s.api("POST", "/keys/claim", {
          token: claimer.accessToken,
          body: { one_time_keys: { [u.userId]: { [u.deviceId]: "signed_curve25519" } } },
        })
      ).json.one_time_keys[u.userId]?.[u.deviceId];
    assert.deepEqual(await claim(), { "signed_curve25519:A": { key: "a" } });
    assert.deepEqual(await claim(), { "signed_curve25519:B": { key: "b" } });
    const sync1 = await s.api("GET", "/sync", { token: u.accessToken });
    assert.deepEqual(sync1.json.device_unused_fallback_key_types, ["signed_curve25519"]);
    assert.deepEqual(await claim(), { "signed_curve25519:F": { key: "f", fallback: true } });
    assert.deepEqual(
      await claim(),
      { "signed_curve25519:F": { key: "f", fallback: true } },
      "fallback is reused",
    );
    const sync2 = await s.api("GET", "/sync", { token: u.accessToken });
    assert.deepEqual(sync2.json.device_unused_fallback_key_types, []);
    assert.equal(sync2.json.device_one_time_keys_count.signed_curve25519, 0);
  });

  it("cross-signing: UIA to replace, signature checks, user-signing visibility", async () => {
    const alice = await s.register("csalice", "pw");
    const bob = await s.register("csbob", "pw");
    const aliceEd = newKey();
    const bobEd = newKey();
    await s.api("POST", "/keys/upload", {
      token: alice.accessToken,
      body: { device_keys: deviceKeys(alice, aliceEd) },
    });
    await s.api("POST", "/keys/upload", {
      token: bob.accessToken,
      body: { device_keys: deviceKeys(bob, bobEd) },
    });
    const upload = async (u: TestUser, master: Signer, ssk: Signer, usk: Signer, auth?: Json) => {
      const mk = csKey(u, "master", master);
      const mkId = `ed25519:${master.pub}`;
      return s.api("POST", "/keys/device_signing/upload", {
        token: u.accessToken,
        body: {
          master_key: mk,
          self_signing_key: signObj(csKey(u, "self_signing", ssk), u.userId, mkId, master),
          user_signing_key: signObj(csKey(u, "user_signing", usk), u.userId, mkId, master),
          ...(auth ? { auth } : {}),
        },
      });
    };
    const [am, as, au] = [newKey(), newKey(), newKey()];
    assert.equal((await upload(alice, am, as, au)).status, 200, "first upload needs no UIA");
    const [bm, bs, bu] = [newKey(), newKey(), newKey()];
    assert.equal((await upload(bob, bm, bs, bu)).status, 200);
    // Replacing keys requires a password.
    const replace = await upload(alice, newKey(), newKey(), newKey());
    assert.equal(replace.status, 401);
    assert.deepEqual(replace.json.flows, [{ stages: ["m.login.password"] }]);
    // A self-signing key not signed by the master key is refused.
    const badSsk = await s.api("POST", "/keys/device_signing/upload", {
      token: alice.accessToken,
      body: { self_signing_key: csKey(alice, "self_signing", newKey()) },
    });
    assert.equal(badSsk.json.errcode, "M_INVALID_SIGNATURE");

    // Alice signs her device with her self-signing key, and Bob's master key with her user-signing key.
    const q0 = await s.api("POST", "/keys/query", {
      token: alice.accessToken,
      body: { device_keys: { [alice.userId]: [], [bob.userId]: [] } },
    });
    const { unsigned: _u, ...aliceDevice } = q0.json.device_keys[alice.userId][alice.deviceId];
    const bobMaster = q0.json.master_keys[bob.userId];
    const sigUp = await s.api("POST", "/keys/signatures/upload", {
      token: alice.accessToken,
      body: {
        [alice.userId]: { [alice.deviceId]: signObj(aliceDevice, alice.userId, `ed25519:${as.pub}`, as) },
        [bob.userId]: { [bm.pub]: signObj(bobMaster, alice.userId, `ed25519:${au.pub}`, au) },
      },
    });
    assert.deepEqual(sigUp.json.failures, {});
    // A forged signature is reported as a failure.
    const forged = await s.api("POST", "/keys/signatures/upload", {
      token: alice.accessToken,
      body: { [bob.userId]: { [bm.pub]: signObj(bobMaster, alice.userId, `ed25519:${au.pub}`, newKey()) } },
    });
    assert.equal(
      forged.json.failures[bob.userId]?.[bm.pub]?.errcode,
      "M_INVALID_SIGNATURE",
      JSON.stringify(forged.json),
    );

    const asAlice = await s.api("POST", "/keys/query", {
      token: alice.accessToken,
      body: { device_keys: { [alice.userId]: [], [bob.userId]: [] } },
    });
    const asBob = await s.api("POST", "/keys/query", {
      token: bob.accessToken,
      body: { device_keys: { [alice.userId]: [], [bob.userId]: [] } },
    });
    for (const q of [asAlice, asBob]) {
      const sigs = q.json.device_keys[alice.userId][alice.deviceId].signatures[alice.userId];
      assert.ok(sigs[`ed25519:${as.pub}`], "self-signing signature visible to everyone");
    }
    assert.ok(asAlice.json.master_keys[bob.userId].signatures[alice.userId], "the signer sees her signature");
    assert.equal(asBob.json.master_keys[bob.userId].signatures[alice.userId], undefined, "others do not");
    assert.ok(asAlice.json.user_signing_keys[alice.userId], "asAlice.json.user_signing_keys[alice.userId]");
    assert.equal(asAlice.json.user_signing_keys[bob.userId], undefined);
    assert.ok(asBob.json.user_signing_keys[bob.userId], "asBob.json.user_signing_keys[bob.userId]");
  });

  it("device_lists: key changes of room mates, joins (changed) and leaves (left); keys/changes agrees", async () => {
    const a = await s.register();
    const b = await s.register();
    const c = await s.register();
    const room = (
      await s.api("POST", "/createRoom", { token: a.accessToken, body: { preset: "public_chat" } })
    ).json.room_id as string;
    const r = encodeURIComponent(room);
    await s.api("POST", `/rooms/${r}/join`, { token: b.accessToken, body: {} });
    const t0 = (await s.api("GET", "/sync", { token: a.accessToken })).json.next_batch as string;
    // b uploads new keys; c (sharing no room) too.
    await s.api("POST", "/keys/upload", {
      token: b.accessToken,
      body: { device_keys: deviceKeys(b, newKey()) },
    });
    await s.api("POST", "/keys/upload", {
      token: c.accessToken,
      body: { device_keys: deviceKeys(c, newKey()) },
    });
    const s1 = await s.api("GET", `/sync?since=${t0}`, { token: a.accessToken });
    assert.deepEqual(s1.json.device_lists, { changed: [b.userId], left: [] });
    // c joins: now shares a room, so shows up as changed.
    await s.api("POST", `/rooms/${r}/join`, { token: c.accessToken, body: {} });
    const s2 = await s.api("GET", `/sync?since=${s1.json.next_batch}`, { token: a.accessToken });
    assert.deepEqual(s2.json.device_lists, { changed: [c.userId], left: [] });
    // b leaves: no longer shares any room with a.
    await s.api("POST", `/rooms/${r}/leave`, { token: b.accessToken, body: {} });
    const s3 = await s.api("GET", `/sync?since=${s2.json.next_batch}`, { token: a.accessToken });
    assert.deepEqual(s3.json.device_lists, { changed: [], left: [b.userId] });
    const changes = await s.api("GET", `/keys/changes?from=${t0}&to=${s3.json.next_batch}`, {
      token: a.accessToken,
    });
    assert.deepEqual(changes.json, { changed: [c.userId], left: [b.userId] });
    // A new device of c (login) is a device-list change; deleting it is another.
    const c2 = await s.login(c);
    const s4 = await s.api("GET", `/sync?since=${s3.json.next_batch}`, { token: a.accessToken });
    assert.deepEqual(s4.json.device_lists.changed, [c.userId]);
    await s.api("POST", "/logout", { token: c2.accessToken, body: {} });
    const s5 = await s.api("GET", `/sync?since=${s4.json.next_batch}`, { token: a.accessToken });
    assert.deepEqual(s5.json.device_lists.changed, [c.userId]);
  });

  it("to-device: queued until a later sync acknowledges, * fans out to all devices, txn idempotent", async () => {
    const a = await s.register();
    const b = await s.register();
    const b2 = await s.login(b);
    const send = (txn: string, target: string) =>
      s.api("PUT", `/sendToDevice/m.test/${txn}`, {
        token: a.accessToken,
        body: { messages: { [b.userId]: { [target]: { txn } } } },
      });
    await send("t1", b.deviceId);
    await send("t1", b.deviceId);
    const first = await s.api("GET", "/sync", { token: b.accessToken });
    assert.deepEqual(first.json.to_device.events, [
      { type: "m.test", sender: a.userId, content: { txn: "t1" } },
    ]);
    // The same request again (no since) sees the message again: nothing was acknowledged.
    const again = await s.api("GET", "/sync", { token: b.accessToken });
    assert.equal(again.json.to_device.events.length, 1);
    const ack = await s.api("GET", `/sync?since=${again.json.next_batch}`, { token: b.accessToken });
    assert.deepEqual(ack.json.to_device.events, []);
    const retry = await s.api("GET", `/sync?since=${again.json.next_batch}`, { token: b.accessToken });
    assert.deepEqual(retry.json.to_device.events, []);
    await send("t2", "*");
    const d1 = await s.api("GET", `/sync?since=${ack.json.next_batch}`, { token: b.accessToken });
    const d2 = await s.api("GET", "/sync", { token: b2.accessToken });
    assert.equal(d1.json.to_device.events.length, 1);
    assert.deepEqual(
      d2.json.to_device.events.map((e: { content: { txn: string } }) => e.content.txn),
      ["t2"],
    );
  });

  it("to-device: more than one sync's worth is handed out in order over several syncs", async () => {
    const a = await s.register();
    const b = await s.register();
    const messages: Record<string, Record<string, unknown>> = {};
    await s.api("PUT", "/sendToDevice/m.seq/first", {
      token: a.accessToken,
      body: { messages: { [b.userId]: { [b.deviceId]: { n: -1 } } } },
    });
    for (let i = 0; i < 149; i++) {
      messages[b.userId] = { [b.deviceId]: { n: i } };
      await s.api("PUT", `/sendToDevice/m.seq/t${i}`, { token: a.accessToken, body: { messages } });
    }
    const got: number[] = [];
    let since: string | undefined;
    const sizes: number[] = [];
    for (let round = 0; round < 3; round++) {
      const res = await s.api("GET", `/sync${since ? `?since=${since}` : ""}`, { token: b.accessToken });
      const evs = res.json.to_device.events as { content: { n: number } }[];
      sizes.push(evs.length);
      got.push(...evs.map((e) => e.content.n));
      since = res.json.next_batch;
    }
    assert.deepEqual(sizes, [100, 50, 0]);
    assert.deepEqual(
      got,
      Array.from({ length: 150 }, (_, i) => i - 1),
    );
  });

  it("a long-polling sync wakes for a to-device message", async () => {
    const a = await s.register();
    const b = await s.register();
    const t = (await s.api("GET", "/sync", { token: b.accessToken })).json.next_batch as string;
    const poll = s.api("GET", `/sync?since=${t}&timeout=30000`, { token: b.accessToken });
    await s.api("PUT", "/sendToDevice/m.ping/x", {
      token: a.accessToken,
      body: { messages: { [b.userId]: { [b.deviceId]: {} } } },
    });
    assert.equal((await poll).json.to_device.events[0].type, "m.ping");
  });
});
