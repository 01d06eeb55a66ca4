import assert from "node:assert/strict";
import { test } from "node:test";
import { DEHYDRATED_DEVICE_SECRET } from "../../e2ee/secret-storage/names.ts";
import { DEHYDRATION_SECRET_NAME } from "./constants.ts";
import { DehydratedDevices } from "./dehydration.ts";
import type { DehydrationHost } from "./dehydration-types.ts";
import { Lazy } from "./lazy.ts";

test("Lazy builds once, shares a build in progress, and tries again after a failed build", async () => {
  let builds = 0;
  let fail = true;
  const lazy = new Lazy(async () => {
    builds++;
    if (fail) throw new Error("chunk lost");
    return { n: builds };
  });
  assert.equal(lazy.value, undefined);
  await assert.rejects(lazy.get(), /chunk lost/);
  assert.equal(lazy.value, undefined);
  fail = false;
  const [a, b] = await Promise.all([lazy.get(), lazy.get()]);
  assert.equal(a, b);
  assert.equal(builds, 2);
  assert.equal(await lazy.get(), a);
  assert.equal(lazy.value, a);
  assert.equal(builds, 2);
});

test("DehydratedDevices answers running / stop / toJSON without loading its code", () => {
  const devices = new DehydratedDevices({} as DehydrationHost);
  assert.equal(devices.running, false);
  devices.stop();
  assert.deepEqual(devices.toJSON(), { type: "DehydratedDevices", running: false });
});

test("the client's dehydration secret name is the engine's", () => {
  assert.equal(DEHYDRATION_SECRET_NAME, DEHYDRATED_DEVICE_SECRET);
});
