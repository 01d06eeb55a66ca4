// The devserver's answers conform to the client's wire schemas (src/wire), item by item: the lenient
// arrays there would silently drop a malformed event, so every event is checked on its own too.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  basicEventSchema,
  clientEventSchema,
  keysClaimResponseSchema,
  keysQueryResponseSchema,
  keysUploadResponseSchema,
  loginResponseSchema,
  matrixErrorBodySchema,
  mediaConfigResponseSchema,
  messagesResponseSchema,
  registerResponseSchema,
  stateEventSchema,
  strippedStateEventSchema,
  syncResponseSchema,
  toDeviceEventSchema,
  uiaResponseSchema,
  versionsResponseSchema,
  whoamiResponseSchema,
} from "../../src/wire/index.ts";
import type * as z from "../../src/wire/zod.ts";
import { startTestDevServer, type TestDevServer, type TestUser } from "../support/devserver.ts";

function conforms(schema: z.ZodMiniType, value: unknown, what: string): void {
  const r = schema.safeParse(value);
  assert.ok(r.success, `${what}: ${r.success ? "" : JSON.stringify(r.error.issues.slice(0, 3))}`);
}
function each(schema: z.ZodMiniType, items: unknown[] | undefined, what: string): void {
  for (const [i, item] of (items ?? []).entries()) conforms(schema, item, `${what}[${i}]`);
}

describe("devserver responses match the client's wire schemas", () => {
  let s: TestDevServer;
  let a: TestUser;
  let b: TestUser;
  before(async () => {
    s = await startTestDevServer();
  });
  after(() => s.close());

  it("discovery, registration, login, errors", async () => {
    conforms(versionsResponseSchema, (await s.api("GET", "/_matrix/client/versions")).json, "versions");
    conforms(uiaResponseSchema, (await s.api("POST", "/register", { body: { username: "w1" } })).json, "uia");
    const reg = await s.api("POST", "/register", {
      body: { username: "w1", password: "p", auth: { type: "m.login.dummy" } },
    });
    conforms(registerResponseSchema, reg.json, "register");
    a = {
      userId: reg.json.user_id,
      accessToken: reg.json.access_token,
      deviceId: reg.json.device_id,
      password: "p",
    };
    b = await s.register("w2");
    const login = await s.api("POST", "/login", {
      body: { type: "m.login.password", identifier: { type: "m.id.user", user: "w1" }, password: "p" },
    });
    conforms(loginResponseSchema, login.json, "login");
    conforms(
      whoamiResponseSchema,
      (await s.api("GET", "/account/whoami", { token: a.accessToken })).json,
      "whoami",
    );
    conforms(matrixErrorBodySchema, (await s.api("GET", "/account/whoami")).json, "error");
  });

  it("sync, messages, keys and media", async () => {
    const room = (
      await s.api("POST", "/createRoom", { token: a.accessToken, body: { invite: [b.userId], name: "W" } })
    ).json.room_id as string;
    const r = encodeURIComponent(room);
    await s.api("PUT", `/rooms/${r}/send/m.room.message/1`, {
      token: a.accessToken,
      body: { msgtype: "m.text", body: "x" },
    });
    await s.api("PUT", `/user/${encodeURIComponent(a.userId)}/account_data/m.x`, {
      token: a.accessToken,
      body: { y: 1 },
    });
    await s.api("PUT", "/sendToDevice/m.t/1", {
      token: b.accessToken,
      body: { messages: { [a.userId]: { [a.deviceId]: { z: 1 } } } },
    });
    const sync = (await s.api("GET", "/sync", { token: a.accessToken })).json;
    conforms(syncResponseSchema, sync, "sync");
    const joined = sync.rooms.join[room];
    each(clientEventSchema, joined.timeline.events, "timeline");
    each(stateEventSchema, joined.state.events, "state");
    each(basicEventSchema, sync.account_data.events, "account_data");
    each(toDeviceEventSchema, sync.to_device.events, "to_device");
    const bSync = (await s.api("GET", "/sync", { token: b.accessToken })).json;
    each(strippedStateEventSchema, bSync.rooms.invite[room].invite_state.events, "invite_state");
    const incr = (await s.api("GET", `/sync?since=${sync.next_batch}`, { token: a.accessToken })).json;
    conforms(syncResponseSchema, incr, "incremental sync");

    const msgs = (await s.api("GET", `/rooms/${r}/messages?dir=b&limit=5`, { token: a.accessToken })).json;
    conforms(messagesResponseSchema, msgs, "messages");
    each(clientEventSchema, msgs.chunk, "messages.chunk");

    const up = await s.api("POST", "/keys/upload", {
      token: a.accessToken,
      body: { one_time_keys: { "signed_curve25519:A": { key: "k", signatures: {} } } },
    });
    conforms(keysUploadResponseSchema, up.json, "keys/upload");
    const q = await s.api("POST", "/keys/query", {
      token: b.accessToken,
      body: { device_keys: { [a.userId]: [] } },
    });
    conforms(keysQueryResponseSchema, q.json, "keys/query");
    const c = await s.api("POST", "/keys/claim", {
      token: b.accessToken,
      body: { one_time_keys: { [a.userId]: { [a.deviceId]: "signed_curve25519" } } },
    });
    conforms(keysClaimResponseSchema, c.json, "keys/claim");
    const cfg = await s.api("GET", "/_matrix/client/v1/media/config", { token: a.accessToken });
    conforms(mediaConfigResponseSchema, cfg.json, "media config");
  });
});
