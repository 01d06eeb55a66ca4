/**
 * Devices and cross-signing identities of users.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { StoreError } from "../errors.ts";
import { MAX_USERS_PER_DEVICE_LOOKUP } from "../store.ts";
import { ALICE, BOB, deviceOf, sample } from "./samples.ts";

const CAROL = "@carol:example.org";

import type { ConformanceSuite } from "./target.ts";

export function deviceTests({ withStore }: ConformanceSuite): void {
  it("devices: per user, by Curve25519 key (live first), trust and deleted flags", () =>
    withStore(async (s) => {
      await s.saveChanges({
        devices: [
          sample.device(BOB, "OLD", { curve25519Key: "shared", deleted: true }),
          sample.device(BOB, "NEW", { curve25519Key: "shared" }),
          sample.device(ALICE, "PHONE", { trust: "blacklisted" }),
        ],
      });
      assert.equal((await s.getUserDevices(BOB)).length, 2);
      assert.equal((await s.getDeviceByCurve25519Key("shared"))?.deviceId, "NEW");
      assert.equal((await deviceOf(s, ALICE, "PHONE"))?.trust, "blacklisted");
      await s.saveChanges({ devices: [sample.device(ALICE, "PHONE", { trust: "ignored" })] });
      assert.equal((await deviceOf(s, ALICE, "PHONE"))?.trust, "ignored");
      await s.saveChanges({
        devices: [sample.device(BOB, "NEW", { curve25519Key: "shared", deleted: true })],
      });
      assert.equal((await s.getDeviceByCurve25519Key("shared"))?.deleted, true);
    }));

  it("devices of many users at once: each user's devices, deleted ones too, nobody else's", () =>
    withStore(async (s) => {
      await s.saveChanges({
        devices: [
          sample.device(BOB, "OLD", { deleted: true }),
          sample.device(BOB, "NEW"),
          sample.device(ALICE, "PHONE", { trust: "blacklisted" }),
          sample.device(CAROL, "TABLET"),
        ],
      });
      const key = (d: { userId: string; deviceId: string }) => `${d.userId} ${d.deviceId}`;
      const got = await s.getDevicesOfUsers([BOB, ALICE, BOB, "@nobody:example.org"]);
      assert.deepEqual(got.map(key).sort(), [`${ALICE} PHONE`, `${BOB} NEW`, `${BOB} OLD`]);
      // Each user's in device ID order, as getUserDevices.
      assert.deepEqual(
        got.filter((d) => d.userId === BOB).map((d) => d.deviceId),
        ["NEW", "OLD"],
      );
      for (const d of got) {
        assert.deepEqual(
          d,
          (await s.getUserDevices(d.userId)).find((x) => x.deviceId === d.deviceId),
        );
      }
      assert.deepEqual(await s.getDevicesOfUsers([]), []);
      for (const bad of [BOB, [BOB, 3], Array(MAX_USERS_PER_DEVICE_LOOKUP + 1).fill(BOB)]) {
        await assert.rejects(
          s.getDevicesOfUsers(bad as never),
          (e: unknown) => e instanceof StoreError && e.code === "BAD_OPTION",
        );
      }
    }));

  it("cross-signing: identities per user replaced whole, private keys as secrets set and deleted", async () => {
    const identity = (master: string, pinned: string) => ({
      version: 1,
      master: { user_id: BOB, usage: ["master"], keys: { [`ed25519:${master}`]: master } },
      pinned,
      was_verified: true,
    });
    await withStore(async (s) => {
      await s.saveChanges({
        crossSigningIdentities: [
          { userId: BOB, identity: identity("m1", "m1") },
          { userId: ALICE, identity: identity("a1", "a1") },
        ],
        secrets: { "m.cross_signing.self_signing": "c2VsZg", "m.cross_signing.user_signing": "dXNlcg" },
      });
      // A new master key for Bob: the whole record is replaced (the pin stays where the engine put it).
      await s.saveChanges({ crossSigningIdentities: [{ userId: BOB, identity: identity("m2", "m1") }] });
      assert.deepEqual((await s.getCrossSigningIdentity(BOB))?.identity, identity("m2", "m1"));
      assert.deepEqual((await s.getCrossSigningIdentity(ALICE))?.identity, identity("a1", "a1"));
      assert.equal(await s.getCrossSigningIdentity("@carol:example.org"), undefined);
      await s.saveChanges({ secrets: { "m.cross_signing.user_signing": null } });
      assert.equal(await s.getSecret("m.cross_signing.self_signing"), "c2VsZg");
      assert.equal(await s.getSecret("m.cross_signing.user_signing"), undefined);
    });
  });
}
