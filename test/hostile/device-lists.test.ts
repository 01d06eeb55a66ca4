/** Hostile `/keys/query` answers (a malicious homeserver): no bad device is believed, none replaced. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Account } from "../../src/crypto/olm/index.ts";
import { E2eeError } from "../../src/e2ee/errors.ts";
import { signWithAccount } from "../../src/e2ee/signing.ts";
import { afterCase, LONE, makeWorld, snapshot, type World } from "./world.ts";

const OLM = "m.olm.v1.curve25519-aes-sha2";
const signed = (
  account: Account,
  userId: string,
  deviceId: string,
  edit: (k: Record<string, unknown>) => Record<string, unknown> = (k) => k,
) =>
  signWithAccount(
    account,
    userId,
    deviceId,
    edit({
      user_id: userId,
      device_id: deviceId,
      algorithms: [OLM, "m.megolm.v1.aes-sha2"],
      keys: {
        [`curve25519:${deviceId}`]: account.identityKeys.curve25519,
        [`ed25519:${deviceId}`]: account.identityKeys.ed25519,
      },
    }),
  );

type Entry = (w: World) => { userId: string; deviceId: string; keys: unknown };
const eve =
  (deviceId: string, edit?: (k: Record<string, unknown>) => Record<string, unknown>): Entry =>
  () => ({
    userId: "@eve:x",
    deviceId,
    keys: signed(Account.create(), "@eve:x", deviceId, edit),
  });

const CASES: [string, Entry][] = [
  [
    "filed under another user",
    () => ({ userId: "@eve:x", deviceId: "E1", keys: signed(Account.create(), "@other:x", "E1") }),
  ],
  [
    "filed under another device ID",
    () => ({ userId: "@eve:x", deviceId: "E2", keys: signed(Account.create(), "@eve:x", "OTHER") }),
  ],
  [
    "signature by another key",
    () => {
      const k = signed(Account.create(), "@eve:x", "E3");
      const other = signed(Account.create(), "@eve:x", "E3");
      return { userId: "@eve:x", deviceId: "E3", keys: { ...k, signatures: other.signatures } };
    },
  ],
  [
    "unsigned",
    () => {
      const { signatures: _s, ...k } = signed(Account.create(), "@eve:x", "E4");
      return { userId: "@eve:x", deviceId: "E4", keys: k };
    },
  ],
  [
    "a field changed after signing",
    () => ({
      userId: "@eve:x",
      deviceId: "E5",
      keys: { ...signed(Account.create(), "@eve:x", "E5"), algorithms: ["x"] },
    }),
  ],
  [
    "curve key missing",
    eve("E6", (k) => ({ ...k, keys: { "ed25519:E6": (k.keys as Record<string, string>)["ed25519:E6"] } })),
  ],
  [
    "curve key of 31 bytes",
    eve("E7", (k) => ({ ...k, keys: { ...(k.keys as object), "curve25519:E7": "A".repeat(42) } })),
  ],
  [
    "curve key not base64",
    eve("E8", (k) => ({ ...k, keys: { ...(k.keys as object), "curve25519:E8": "!!!!" } })),
  ],
  ["keys not an object", eve("E9", (k) => ({ ...k, keys: "nope" }))],
  ["algorithms not a list", eve("E10", (k) => ({ ...k, algorithms: "x" }))],
  [
    "device ID with a lone surrogate",
    () => ({
      userId: "@eve:x",
      deviceId: `E${LONE}`,
      keys: { user_id: "@eve:x", device_id: `E${LONE}`, algorithms: [OLM], keys: {}, signatures: {} },
    }),
  ],
  ["device keys null", () => ({ userId: "@eve:x", deviceId: "E12", keys: null })],
  ["device keys an array", () => ({ userId: "@eve:x", deviceId: "E13", keys: [] })],
  [
    "Alice's device with new keys under its ID",
    () => ({ userId: "@alice:x", deviceId: "A", keys: signed(Account.create(), "@alice:x", "A") }),
  ],
  [
    "a device squatting Alice's curve key",
    (w) => {
      const a = Account.create();
      return {
        userId: "@eve:x",
        deviceId: "E15",
        keys: signWithAccount(a, "@eve:x", "E15", {
          user_id: "@eve:x",
          device_id: "E15",
          algorithms: [OLM],
          keys: {
            "curve25519:E15": w.alice.machine.identityKeys.curve25519,
            "ed25519:E15": a.identityKeys.ed25519,
          },
        }),
      };
    },
  ],
];

describe("hostile input: device lists", () => {
  let w: World;
  before(async () => {
    w = await makeWorld();
    await w.bob.machine.updateTrackedUsers(["@eve:x"]);
  });
  for (const [name, build] of CASES) {
    it(`${name} → not believed`, async () => {
      const state = await snapshot(w);
      const { userId, deviceId, keys } = build(w);
      await w.bob.machine.receiveKeysChanges([userId], []);
      const query = (await w.bob.machine.outgoingRequests()).find((r) => r.type === "keys_query");
      assert.ok(query);
      const honest = w.hs.handle("@bob:x", "B", query) as {
        device_keys: Record<string, Record<string, unknown>>;
      };
      const response = {
        ...honest,
        device_keys: { ...honest.device_keys, [userId]: { ...honest.device_keys[userId], [deviceId]: keys } },
      };
      await w.bob.machine.markRequestAsSent(query, response);
      const squatter = name.includes("squatting");
      const device = await w.bob.machine.getDevice(userId, deviceId);
      if (squatter) assert.ok(device, "a squatting device is listed, but attributes nothing");
      else if (userId === "@alice:x") assert.equal(device?.ed25519, w.alice.machine.identityKeys.ed25519);
      else assert.equal(device, undefined);
      await afterCase(w, state);
    });
  }
  for (const [name, response] of [
    ["a response that is not an object", "nope"],
    ["device_keys a list", { device_keys: [] }],
    ["a user's devices a string", { device_keys: { "@eve:x": "x" } }],
  ] as const) {
    it(`${name} → E2eeError BAD_RESPONSE`, async () => {
      const state = await snapshot(w);
      await w.bob.machine.receiveKeysChanges(["@eve:x"], []);
      const query = (await w.bob.machine.outgoingRequests()).find((r) => r.type === "keys_query");
      assert.ok(query);
      await assert.rejects(
        w.bob.machine.markRequestAsSent(query, response),
        (e) => e instanceof E2eeError && e.code === "BAD_RESPONSE",
      );
      await w.bob.flush();
      await afterCase(w, state);
    });
  }
});
