import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { Account } from "../../crypto/olm/index.ts";
import type { KeysClaimRequest } from "../requests.ts";
import { signWithAccount } from "../signing.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { MAX_SESSIONS_PER_DEVICE } from "./sessions.ts";

/** Mallory speaks Olm by hand, so she can put anything in the payload. */
async function setup() {
  const hs = new FakeHomeserver();
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  await bob.sync();
  const mallory = Account.create();
  const keys = mallory.identityKeys;
  hs.forgeDeviceKeys(
    "@mallory:x",
    "M",
    signWithAccount(mallory, "@mallory:x", "M", {
      user_id: "@mallory:x",
      device_id: "M",
      algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
      keys: { "curve25519:M": keys.curve25519, "ed25519:M": keys.ed25519 },
    }),
  );
  await bob.machine.updateTrackedUsers(["@mallory:x"]);
  await bob.sync();
  const claim: KeysClaimRequest = {
    id: "c",
    type: "keys_claim",
    body: { one_time_keys: { "@bob:x": { B: "signed_curve25519" } } },
  };
  const claimed = hs.handle("@mallory:x", "M", claim) as {
    one_time_keys: Record<string, Record<string, Record<string, { key: string }>>>;
  };
  const otk = Object.values(claimed.one_time_keys["@bob:x"]?.B ?? {})[0]?.key ?? "";
  const bobKeys = bob.machine.identityKeys;
  const session = mallory.createOutboundSession(bobKeys.curve25519, otk);
  const send = (overrides: Record<string, unknown>, over = session, toDeviceSender = "@mallory:x") => {
    const payload = {
      type: "m.dummy",
      content: {},
      sender: "@mallory:x",
      recipient: "@bob:x",
      recipient_keys: { ed25519: bobKeys.ed25519 },
      keys: { ed25519: keys.ed25519 },
      ...overrides,
    };
    const message = over.encrypt(JSON.stringify(payload));
    return bob.machine.receiveSyncChanges({
      toDevice: [
        {
          type: "m.room.encrypted",
          sender: toDeviceSender,
          content: {
            algorithm: "m.olm.v1.curve25519-aes-sha2",
            sender_key: keys.curve25519,
            ciphertext: { [bobKeys.curve25519]: message },
          },
        },
      ],
    });
  };
  return { send, hs, bob, mallory };
}

describe("Olm payload checks", () => {
  it("accepts a payload naming both parties correctly", async () => {
    const { send } = await setup();
    const result = await send({});
    assert.deepEqual(result.failures, []);
    assert.equal(result.toDevice[0]?.encryption?.senderDevice, "M");
  });

  for (const [name, overrides, code] of [
    ["another recipient", { recipient: "@carol:x" }, "RECIPIENT_MISMATCH"],
    ["another recipient key", { recipient_keys: { ed25519: "AAAA" } }, "RECIPIENT_MISMATCH"],
    ["another signing key for the sender", { keys: { ed25519: "AAAA" } }, "KEYS_MISMATCH"],
    ["another sender", { sender: "@alice:x" }, "SENDER_MISMATCH"],
    ["no recipient at all", { recipient: undefined }, "BAD_PAYLOAD"],
  ] as const) {
    it(`drops a payload with ${name}, storing nothing it carries`, async () => {
      const { send, bob } = await setup();
      const session = OutboundGroupSession.create();
      const roomKey = {
        algorithm: "m.megolm.v1.aes-sha2",
        room_id: "!room:x",
        session_id: session.sessionId,
        session_key: session.sessionKey(),
      };
      const result = await send({ type: "m.room_key", content: roomKey, ...overrides });
      assert.deepEqual(
        result.failures.map((f) => f.code),
        [code],
      );
      assert.equal(result.toDevice.length, 0);
      assert.deepEqual(result.roomKeys, []);
      assert.equal(await bob.machine.roomKeyCount(), 0);
    });
  }

  it("drops a payload from a known device of another user passed off as someone else's", async () => {
    const { send, bob } = await setup();
    // Mallory's own device and keys, with her payload and the server both naming Alice.
    const result = await send({ sender: "@alice:x" }, undefined, "@alice:x");
    assert.deepEqual(
      result.failures.map((f) => f.code),
      ["SENDER_MISMATCH"],
    );
    assert.equal(result.toDevice.length, 0);
    assert.equal(await bob.machine.roomKeyCount(), 0);
  });

  it("keeps at most MAX_SESSIONS_PER_DEVICE sessions with one device", async () => {
    const { send, hs, bob, mallory } = await setup();
    const fallback = hs.device("@bob:x", "B").fallback?.key.key ?? "";
    for (let i = 0; i < MAX_SESSIONS_PER_DEVICE + 3; i++) {
      const result = await send(
        {},
        mallory.createOutboundSession(bob.machine.identityKeys.curve25519, fallback),
      );
      assert.deepEqual(result.failures, []);
    }
    assert.equal(
      (await bob.store.getOlmSessions(mallory.identityKeys.curve25519)).length,
      MAX_SESSIONS_PER_DEVICE,
    );
  });

  it("asks for a new session when a peer used a one-time key we do not hold", async () => {
    const { send, bob, mallory } = await setup();
    const unknownKey = Account.create().identityKeys.curve25519;
    const result = await send(
      {},
      mallory.createOutboundSession(bob.machine.identityKeys.curve25519, unknownKey),
    );
    assert.deepEqual(
      result.failures.map((f) => f.code),
      ["NO_SESSION"],
    );
    const claim = (await bob.machine.outgoingRequests()).find((r) => r.type === "keys_claim");
    assert.ok(claim?.type === "keys_claim" && claim.body.one_time_keys["@mallory:x"]?.M !== undefined);
  });

  it("survives any content inside a valid Olm payload (property)", async () => {
    const { send } = await setup();
    const anyValue = fc.jsonValue({ maxDepth: 2 });
    const content = fc.oneof(
      fc.dictionary(fc.string(), anyValue),
      fc.record(
        {
          algorithm: fc.constantFrom("m.megolm.v1.aes-sha2", "x"),
          room_id: fc.oneof(fc.constant("!r:x"), fc.string({ maxLength: 300 })),
          session_id: fc.oneof(fc.base64String(), fc.string()),
          session_key: fc.oneof(fc.base64String({ maxLength: 400 }), anyValue),
          code: fc.string(),
          sender_key: fc.string(),
          sender_claimed_ed25519_key: fc.string(),
          forwarding_curve25519_key_chain: fc.oneof(fc.array(fc.string()), anyValue),
        },
        { requiredKeys: [] },
      ),
    );
    const type = fc.constantFrom(
      "m.room_key",
      "m.forwarded_room_key",
      "m.room_key.withheld",
      "m.dummy",
      "m.other",
    );
    await fc.assert(
      fc.asyncProperty(type, content, async (t, c) => {
        const result = await send({ type: t, content: c });
        assert.deepEqual(result.failures, []);
        assert.equal(result.toDevice.length, 1);
      }),
      { numRuns: 100 },
    );
  });
});
