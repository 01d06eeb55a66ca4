/**
 * A keys upload refused because the server holds other keys under the IDs of ours (the store was
 * restored from an older copy): the machine replaces the refused keys and uploads again, a bounded
 * number of times; every other failure changes nothing.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCryptoStore } from "../../store/index.ts";
import { E2eeError } from "../errors.ts";
import { OlmMachine } from "../machine.ts";
import type { KeysUploadRequest } from "../requests.ts";
import { FakeHomeserver, FakeHttpError, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";
import {
  KEY_ID_SKIP_ON_CONFLICT,
  KEY_UPLOAD_CONFLICT_BACKOFF_MS,
  MAX_KEY_UPLOAD_CONFLICTS,
  type RequestFailure,
  refusedKey,
} from "./upload-conflict.ts";

function uploadIn(requests: readonly { type: string }[]): KeysUploadRequest | undefined {
  return requests.find((r): r is KeysUploadRequest => r.type === "keys_upload");
}

/** The number a key ID (`signed_curve25519:AAAAAQ`) stands for. */
function keyNumber(keyId: string): number {
  return Buffer.from(keyId.slice(keyId.indexOf(":") + 1), "base64").readUInt32BE(0);
}

/** Has `claimer` claim `count` of Bob's one-time keys (the oldest first, as servers do). */
function claim(hs: FakeHomeserver, count: number): void {
  for (let i = 0; i < count; i++) {
    hs.handle("@carol:x", "C", {
      id: `claim${i}`,
      type: "keys_claim",
      body: { one_time_keys: { "@bob:x": { B: "signed_curve25519" } } },
    });
  }
}

/** Sends the upload to the fake server; its error answer, if it refused it. */
function refusal(hs: FakeHomeserver, upload: KeysUploadRequest): RequestFailure | undefined {
  try {
    hs.handle("@bob:x", "B", upload);
    return undefined;
  } catch (e) {
    if (!(e instanceof FakeHttpError)) throw e;
    return { status: e.status, body: e.body };
  }
}

/** The refusal Synapse sends for `keyId` (the keys in its text are made up here). */
const synapseRefusal = (keyId: string): RequestFailure => ({
  status: 400,
  body: {
    errcode: "M_UNKNOWN",
    error: `One time key ${keyId} already exists. Old key: {"key":"old"}; new key: {'key': 'new'}`,
  },
});

describe("a keys upload refused for key IDs the server already holds", () => {
  it("after a rollback of the store: new keys past the old counter are published, and a peer starts a session on one", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.sync(); // fallback key 1, one-time keys 2..51
    const copy = structuredClone(bob.data.account); // the backup of the store

    // Later: peers claim 30 keys and Bob publishes 30 new ones (52..81).
    claim(hs, 30);
    await bob.sync();
    assert.equal(hs.device("@bob:x", "B").oneTimeKeys.size, 50);

    // The store is restored from the backup: Bob's counter is back at 51.
    await bob.machine.close();
    await bob.store.close();
    bob.data.account = copy;
    bob.store = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B", data: bob.data });
    bob.machine = await OlmMachine.open({ ...bob.options, store: bob.store });
    claim(hs, 10); // 40 left on the server: 42..51, which Bob holds, and 52..81, which he lost

    await bob.machine.receiveSyncChanges({ ...hs.syncFor("@bob:x", "B"), nextBatch: "r1" });
    const refused = uploadIn(await bob.machine.outgoingRequests());
    assert.ok(refused?.body.one_time_keys !== undefined);
    const refusedIds = Object.keys(refused.body.one_time_keys);
    assert.deepEqual(refusedIds.map(keyNumber), [52, 53, 54, 55, 56, 57, 58, 59, 60, 61]);
    const failure = refusal(hs, refused);
    assert.ok(failure !== undefined, "the server refuses key 52: it holds another key under that ID");
    assert.equal(await bob.machine.markRequestAsFailed(refused, failure), "rebuilt");

    const rebuilt = uploadIn(await bob.machine.outgoingRequests());
    assert.ok(rebuilt !== undefined && rebuilt.id !== refused.id);
    const ids = Object.keys(rebuilt.body.one_time_keys ?? {});
    assert.equal(ids.length, 10, "as many new keys as were refused");
    // Numbered on from the refused ones' counter (61) after a skip.
    const first = 61 + KEY_ID_SKIP_ON_CONFLICT + 1;
    assert.deepEqual(
      ids.map(keyNumber),
      Array.from({ length: 10 }, (_, i) => first + i),
    );
    const refusedKeys = new Set(Object.values(refused.body.one_time_keys).map((k) => k.key));
    assert.ok(Object.values(rebuilt.body.one_time_keys ?? {}).every((k) => !refusedKeys.has(k.key)));
    await bob.send(rebuilt);
    assert.equal(uploadIn(await bob.machine.outgoingRequests()), undefined, "published");

    // Once the 40 older keys are gone, a peer gets one of the new keys and its session works.
    claim(hs, 40);
    assert.deepEqual([...hs.device("@bob:x", "B").oneTimeKeys.keys()], ids);
    const dave = new RawOlmPeer("@dave:x", "D");
    dave.publish(hs);
    dave.startSession(hs, bob);
    const message = dave.encrypt(hs, bob, dave.payload(bob, "m.dummy", {}));
    const result = await bob.machine.receiveSyncChanges({ toDevice: [message], nextBatch: "r2" });
    assert.deepEqual(result.failures, []);
    assert.equal(result.toDevice[0]?.type, "m.dummy");
  });

  it(`gives up after ${MAX_KEY_UPLOAD_CONFLICTS} new uploads refused in a row, holds the upload back, then tries again`, async () => {
    const hs = new FakeHomeserver();
    let now = 1_700_000_000_000;
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: () => now });
    hs.exhaustOneTimeKeys("@bob:x", "B");
    await bob.machine.receiveSyncChanges({ oneTimeKeyCounts: { signed_curve25519: 0 }, nextBatch: "s1" });
    const refuseNext = async () => {
      const upload = uploadIn(await bob.machine.outgoingRequests());
      assert.ok(upload?.body.one_time_keys !== undefined);
      const keyId = Object.keys(upload.body.one_time_keys)[0] ?? "";
      return bob.machine.markRequestAsFailed(upload, synapseRefusal(keyId));
    };
    for (let i = 0; i < MAX_KEY_UPLOAD_CONFLICTS; i++) assert.equal(await refuseNext(), "rebuilt");
    await assert.rejects(
      refuseNext(),
      (e: unknown) => e instanceof E2eeError && e.code === "KEY_UPLOAD_CONFLICT",
    );
    now += KEY_UPLOAD_CONFLICT_BACKOFF_MS - 1;
    assert.equal(uploadIn(await bob.machine.outgoingRequests()), undefined, "held back");
    now += 1;
    // Then a fresh round of replacements, and an accepted upload resets the count.
    assert.equal(await refuseNext(), "rebuilt");
    await bob.flush();
    assert.equal(hs.device("@bob:x", "B").oneTimeKeys.size, 50);
    for (let i = 0; i < MAX_KEY_UPLOAD_CONFLICTS; i++) {
      await bob.machine.receiveSyncChanges({
        oneTimeKeyCounts: { signed_curve25519: 49 },
        nextBatch: `t${i}`,
      });
      assert.equal(await refuseNext(), "rebuilt");
      await bob.flush();
    }
  });

  it("leaves every other failure alone: the same upload goes out again", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    hs.exhaustOneTimeKeys("@bob:x", "B");
    await bob.machine.receiveSyncChanges({ oneTimeKeyCounts: { signed_curve25519: 0 }, nextBatch: "s1" });
    const upload = uploadIn(await bob.machine.outgoingRequests());
    assert.ok(upload?.body.one_time_keys !== undefined);
    const keyId = Object.keys(upload.body.one_time_keys)[0] ?? "";
    const text = (error: unknown, errcode: unknown = "M_UNKNOWN"): RequestFailure => ({
      status: 400,
      body: { errcode, error },
    });
    const others: RequestFailure[] = [
      { status: 500, body: { errcode: "M_UNKNOWN", error: `One time key ${keyId} already exists` } },
      { status: 429, body: { errcode: "M_LIMIT_EXCEEDED" } },
      { status: 400 },
      { status: 400, body: `One time key ${keyId} already exists` },
      { status: 400, body: [] },
      { status: 400, body: null },
      text("Invalid key"),
      text(`One time key ${keyId} already exists`, "M_FORBIDDEN"),
      text(`One time key ${keyId} already exists`, 400),
      text(42),
      // A key ID this upload does not carry: not ours to replace.
      text("One time key signed_curve25519:AAAAAA already exists"),
      text("One time key curve25519:AAAAAQ already exists"),
      // The ID far into a huge text is not looked for.
      text(`${"x".repeat(10_000)} One time key ${keyId} already exists`),
    ];
    for (const failure of others) {
      assert.equal(
        await bob.machine.markRequestAsFailed(upload, failure),
        "unchanged",
        JSON.stringify(failure).slice(0, 80),
      );
    }
    // Another request, or an upload no longer in flight.
    assert.equal(
      await bob.machine.markRequestAsFailed({ ...upload, id: "other" }, synapseRefusal(keyId)),
      "unchanged",
    );
    assert.equal(
      await bob.machine.markRequestAsFailed({ id: upload.id, type: "keys_query" }, synapseRefusal(keyId)),
      "unchanged",
    );
    assert.deepEqual(uploadIn(await bob.machine.outgoingRequests()), upload);
  });
});

describe("refusedKey", () => {
  const body: KeysUploadRequest["body"] = {
    one_time_keys: { "signed_curve25519:AAAAAg": { key: "a", signatures: {} } },
    fallback_keys: { "signed_curve25519:AAAAAQ": { key: "f", fallback: true, signatures: {} } },
  };
  it("reads the key ID Synapse and the devserver name, bare or with the algorithm, and tells a fallback key", () => {
    assert.deepEqual(refusedKey(synapseRefusal("signed_curve25519:AAAAAg"), body), {
      keyId: "signed_curve25519:AAAAAg",
      fallback: false,
    });
    const bare = {
      status: 400,
      body: { errcode: "M_INVALID_PARAM", error: "one-time key 'AAAAAQ' already exists" },
    };
    assert.deepEqual(refusedKey(bare, body), { keyId: "signed_curve25519:AAAAAQ", fallback: true });
    assert.equal(refusedKey(synapseRefusal("signed_curve25519:AAAAAw"), body), undefined);
    assert.equal(refusedKey(synapseRefusal("signed_curve25519:AAAAAg"), {}), undefined);
  });
});
