import assert from "node:assert/strict";
import { test } from "node:test";
import type { JsonObject, MatrixClient } from "../index.ts";
import { MAX_EVENT_DEPTH, outgoingJsonProblem } from "../wire/json.ts";
import { BotState, MAX_STATE_BYTES, STATE_EVENT_PREFIX, StateError } from "./state.ts";

/** Account data in maps, as the client would keep it. */
function fakeHost() {
  const global = new Map<string, JsonObject>();
  const rooms = new Map<string, Map<string, JsonObject>>();
  const host = {
    getAccountData: (type: string) => global.get(type),
    setAccountData: async (type: string, content: JsonObject) => void global.set(type, content),
    getRoom: (roomId: string) => ({ getAccountData: (type: string) => rooms.get(roomId)?.get(type) }),
    setRoomAccountData: async (roomId: string, type: string, content: JsonObject) => {
      const m = rooms.get(roomId) ?? new Map<string, JsonObject>();
      m.set(type, content);
      rooms.set(roomId, m);
    },
  };
  return { host: host as unknown as MatrixClient, global, rooms };
}

test("state: versioned values, checked on read, migrated, serialized updates, carried to a new room", async () => {
  const { host, global, rooms } = fakeHost();
  const state = new BotState(host);
  const count = state.define<number>("count", {
    version: 2,
    initial: () => 0,
    validate: (v): v is number => typeof v === "number",
    migrate: (old, from) => (from === 1 && typeof old === "string" ? Number(old) : 0),
  });
  assert.equal(count.global().get(), 0);
  await Promise.all([1, 2, 3].map(() => count.global().update((n) => n + 1)));
  assert.deepEqual(global.get(`${STATE_EVENT_PREFIX}count`), { version: 2, value: 3 }, "no update lost");

  global.set(`${STATE_EVENT_PREFIX}count`, { version: 1, value: "41" });
  const fresh = new BotState(host).define<number>("count", {
    version: 2,
    initial: () => 0,
    validate: (v): v is number => typeof v === "number",
    migrate: (old, from) => (from === 1 && typeof old === "string" ? Number(old) : 0),
  });
  assert.equal(fresh.global().get(), 41, "migrated from version 1");
  global.set(`${STATE_EVENT_PREFIX}count`, { version: 2, value: "not a number" });
  assert.equal(fresh.global().get(), 0, "an invalid stored value reads as the initial one");
  global.set(`${STATE_EVENT_PREFIX}count`, { version: 3, value: 1 });
  assert.throws(() => fresh.global().get(), StateError, "written by a newer bot");

  await count.room("!a:x").set(7);
  assert.deepEqual(await state.carry("!a:x", "!b:x"), ["count"]);
  assert.equal(rooms.get("!b:x")?.get(`${STATE_EVENT_PREFIX}count`)?.value, 7);
  await assert.rejects(
    state
      .define<string>("big", { version: 1, initial: () => "" })
      .global()
      .set("x".repeat(MAX_STATE_BYTES)),
    StateError,
  );
  assert.throws(() => state.define("bad key!", { version: 1, initial: () => 0 }), StateError);
});

test("a stored value the migration or the check throws on reads as the initial one, and can be written over", async () => {
  const { host, global } = fakeHost();
  const fragile = new BotState(host).define<{ n: number }>("fragile", {
    version: 2,
    initial: () => ({ n: 0 }),
    validate: (v): v is { n: number } => typeof (v as { n: unknown }).n === "number",
    migrate: (old) => ({ n: (old as { count: number }).count + 1 }),
  });
  // Written by another client of the account: version 1 with no object, then version 2 null.
  global.set(`${STATE_EVENT_PREFIX}fragile`, { version: 1, value: null });
  assert.deepEqual(fragile.global().get(), { n: 0 });
  global.set(`${STATE_EVENT_PREFIX}fragile`, { version: 2, value: null });
  assert.deepEqual(fragile.global().get(), { n: 0 });
  assert.deepEqual(await fragile.global().update((v) => ({ n: v.n + 1 })), { n: 1 });
  assert.deepEqual(global.get(`${STATE_EVENT_PREFIX}fragile`), { version: 2, value: { n: 1 } });
});

test("a value holding a user's lone surrogate (in a string or a key) is stored with U+FFFD, not refused", async () => {
  const { host, global } = fakeHost();
  const notes = new BotState(host).define<Record<string, string[]>>("notes", {
    version: 1,
    initial: () => ({}),
  });
  await notes.global().set({ "key \ud800": ["text \udfff", "emoji 😀"] });
  const stored = global.get(`${STATE_EVENT_PREFIX}notes`);
  assert.equal(outgoingJsonProblem(stored, MAX_EVENT_DEPTH), undefined, "the client would send it");
  assert.deepEqual(stored?.value, { "key \ufffd": ["text \ufffd", "emoji 😀"] });
});
