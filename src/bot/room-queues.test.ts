import assert from "node:assert/strict";
import { test } from "node:test";
import { RoomQueues } from "./room-queues.ts";

test("room queues: in order within a room, rooms at once, settle waits for what was pushed before it, failures isolated", async () => {
  const q = new RoomQueues();
  const log: string[] = [];
  const errors: unknown[] = [];
  let releaseA: () => void = () => {};
  const gate = new Promise<void>((r) => {
    releaseA = r;
  });
  q.push(
    "!a",
    async () => {
      await gate;
      log.push("a1");
    },
    (e) => errors.push(e),
  );
  q.push(
    "!a",
    async () => void log.push("a2"),
    (e) => errors.push(e),
  );
  q.push(
    "!b",
    async () => {
      log.push("b1");
      throw new Error("b1 fails");
    },
    (e) => errors.push(e),
  );
  q.push(
    "!b",
    async () => void log.push("b2"),
    (e) => errors.push(e),
  );
  const settled = q.settle();
  // Pushed after: the next sync response's work, which this settle does not wait for.
  let releaseLater: () => void = () => {};
  const later = new Promise<void>((r) => {
    releaseLater = r;
  });
  q.push(
    "!a",
    () => later,
    (e) => errors.push(e),
  );
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log, ["b1", "b2"], "room b does not wait for room a");
  releaseA();
  await settled;
  assert.deepEqual(log, ["b1", "b2", "a1", "a2"]);
  assert.equal(errors.length, 1);
  const all = q.settle();
  releaseLater();
  await all;
});
