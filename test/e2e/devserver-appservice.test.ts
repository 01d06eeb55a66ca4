// The devserver's application-service side: registration files at start, as_token identity
// assertion (user and device masquerading), appservice registration and login, exclusive
// namespaces, and transactions pushed with hs_token, retried with the same ID and body, carrying
// to-device messages (MSC2409/MSC4203) and MSC3202 device lists and key counts.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Registration } from "../../src/wire/appservice.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

interface Received {
  txnId: string;
  accepted: boolean;
  auth: string | undefined;
  body: Record<string, unknown>;
}

/** A transaction receiver that fails the first `failFirst` requests with 500. */
async function receiver(failFirst = 0): Promise<{
  url: string;
  got: Received[];
  next(pred: (r: Received) => boolean): Promise<Received>;
  /** Changes how many of the next requests fail. */
  failNext(n: number): void;
  close(): Promise<void>;
}> {
  const got: Received[] = [];
  const waiters: { pred: (r: Received) => boolean; resolve: (r: Received) => void }[] = [];
  let failures = failFirst;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const m = /^\/_matrix\/app\/v1\/transactions\/([^/?]+)$/.exec(req.url ?? "");
      const r: Received = {
        txnId: m?.[1] ?? "",
        accepted: failures === 0,
        auth: req.headers.authorization,
        body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>,
      };
      got.push(r);
      if (failures > 0) {
        failures--;
        res.writeHead(500).end("{}");
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
      for (const w of [...waiters]) {
        if (w.pred(r)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(r);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    got,
    failNext: (n) => {
      failures = n;
    },
    next: (pred) =>
      new Promise((resolve) => {
        const seen = got.find((r) => r.accepted && pred(r));
        if (seen) resolve(seen);
        else waiters.push({ pred, resolve });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const events = (r: Received) => (r.body.events as { type: string; content: Record<string, unknown> }[]) ?? [];

describe("devserver appservices", () => {
  let hs: TestDevServer;
  let rx: Awaited<ReturnType<typeof receiver>>;
  let dir: string;
  const reg = (url: string): Registration => ({
    id: "bridge",
    url,
    as_token: "as_secret_token",
    hs_token: "hs_secret_token",
    sender_localpart: "bridgebot",
    namespaces: {
      users: [{ exclusive: true, regex: "@br_.*:localhost" }],
      aliases: [{ exclusive: true, regex: "#br_.*" }],
    },
    rate_limited: false,
    receive_ephemeral: true,
    "org.matrix.msc3202": true,
  });

  before(async () => {
    rx = await receiver(2);
    dir = mkdtempSync(join(tmpdir(), "kr-as-"));
    // A YAML registration file, as Synapse takes them.
    const file = join(dir, "bridge.yaml");
    const r = reg(rx.url);
    writeFileSync(
      file,
      [
        `id: ${r.id}`,
        `url: "${r.url}"`,
        `as_token: ${r.as_token}`,
        `hs_token: ${r.hs_token}`,
        `sender_localpart: ${r.sender_localpart}`,
        "rate_limited: false",
        "receive_ephemeral: true",
        "org.matrix.msc3202: true",
        "namespaces:",
        "  users:",
        '    - { exclusive: true, regex: "@br_.*:localhost" }',
        "  aliases:",
        '    - { exclusive: true, regex: "#br_.*" }',
        "",
      ].join("\n"),
    );
    hs = await startTestDevServer({ appservices: [file], appserviceRetry: { baseMs: 20, maxMs: 100 } });
  });
  after(async () => {
    await hs.close();
    await rx.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const as = (method: string, path: string, body?: unknown) =>
    hs.api(method, path, { token: "as_secret_token", ...(body !== undefined ? { body } : {}) });

  it("registers namespace users without UIA, and refuses others", async () => {
    const ok = await as("POST", "/register", {
      type: "m.login.application_service",
      username: "br_alice",
      inhibit_login: true,
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json.user_id, "@br_alice:localhost");
    assert.equal(ok.json.access_token, undefined);
    const outside = await as("POST", "/register", { type: "m.login.application_service", username: "carol" });
    assert.equal(outside.status, 400);
    assert.equal(outside.json.errcode, "M_EXCLUSIVE");
    const noToken = await hs.api("POST", "/register", {
      body: { type: "m.login.application_service", username: "br_x" },
    });
    assert.equal(noToken.status, 401);
    // An ordinary registration cannot take a name in an exclusive namespace.
    const taken = await hs.api("POST", "/register", {
      body: { username: "br_mallory", password: "pw", auth: { type: "m.login.dummy" } },
    });
    assert.equal(taken.status, 400);
    assert.equal(taken.json.errcode, "M_EXCLUSIVE");
  });

  it("masquerades as namespace users and their devices, and only those", async () => {
    const me = await as("GET", "/account/whoami?user_id=@br_alice:localhost");
    assert.equal(me.status, 200);
    assert.equal(me.json.user_id, "@br_alice:localhost");
    const sender = await as("GET", "/account/whoami");
    assert.equal(sender.json.user_id, "@bridgebot:localhost");
    const human = await hs.register("human");
    const foreign = await as("GET", `/account/whoami?user_id=${encodeURIComponent(human.userId)}`);
    assert.equal(foreign.status, 403);
    const unregistered = await as("GET", "/account/whoami?user_id=@br_nobody:localhost");
    assert.equal(unregistered.status, 403);
    // MSC4190: the appservice creates the device, then acts as it (both parameter spellings).
    const created = await as("PUT", "/devices/BRDEV?user_id=@br_alice:localhost", { display_name: "bridge" });
    assert.equal(created.status, 201);
    for (const param of ["device_id", "org.matrix.msc3202.device_id"]) {
      const w = await as("GET", `/account/whoami?user_id=@br_alice:localhost&${param}=BRDEV`);
      assert.equal(w.status, 200);
      assert.equal(w.json.device_id, "BRDEV");
    }
    // MSC4190: deleting a device needs no UIA from the appservice (its users have no password).
    await as("PUT", "/devices/SPARE?user_id=@br_alice:localhost", {});
    const deleted = await as("DELETE", "/devices/SPARE?user_id=@br_alice:localhost", {});
    assert.equal(deleted.status, 200, JSON.stringify(deleted.json));
    assert.equal((await as("GET", "/devices/SPARE?user_id=@br_alice:localhost")).status, 404);
    const noDevice = await as("GET", "/account/whoami?user_id=@br_alice:localhost&device_id=NOPE");
    assert.equal(noDevice.status, 400);
    assert.equal(noDevice.json.errcode, "M_UNKNOWN_DEVICE");
    // m.login.application_service logs a namespace user in.
    const login = await as("POST", "/login", {
      type: "m.login.application_service",
      identifier: { type: "m.id.user", user: "br_alice" },
    });
    assert.equal(login.status, 200, JSON.stringify(login.json));
    assert.equal(login.json.user_id, "@br_alice:localhost");
    const badLogin = await as("POST", "/login", {
      type: "m.login.application_service",
      identifier: { type: "m.id.user", user: "human" },
    });
    assert.equal(badLogin.status, 403);
  });

  it("pushes room events with hs_token, retrying a failed transaction with the same ID and body", async () => {
    const human = await hs.register("talker");
    const room = await hs.api("POST", "/createRoom", {
      token: human.accessToken,
      body: { invite: ["@br_alice:localhost"] },
    });
    const roomId = room.json.room_id as string;
    const invite = await rx.next((r) =>
      events(r).some((e) => e.type === "m.room.member" && e.content.membership === "invite"),
    );
    assert.equal(invite.auth, "Bearer hs_secret_token");
    const inviteEvent = events(invite).find(
      (e) => e.type === "m.room.member" && e.content.membership === "invite",
    ) as {
      unsigned?: Record<string, unknown>;
    };
    assert.ok(Array.isArray(inviteEvent.unsigned?.invite_room_state), "invites carry stripped state");
    // The first two attempts of the first transaction failed with 500: it came again, unchanged.
    const first = rx.got[0]!;
    const attempts = rx.got.filter((r) => r.txnId === first.txnId);
    assert.equal(attempts.length, 3);
    assert.ok(attempts.every((a) => JSON.stringify(a.body) === JSON.stringify(first.body)));
    assert.ok(attempts[2]!.accepted);
    const join = await as(
      "POST",
      `/rooms/${encodeURIComponent(roomId)}/join?user_id=@br_alice:localhost`,
      {},
    );
    assert.equal(join.status, 200);
    await hs.api("PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`, {
      token: human.accessToken,
      body: { msgtype: "m.text", body: "hello bridge" },
    });
    const msg = await rx.next((r) => events(r).some((e) => e.content.body === "hello bridge"));
    assert.ok(Number(msg.txnId) > Number(invite.txnId));
    // Ephemeral: typing in its users' rooms (receive_ephemeral names the field `ephemeral`).
    await hs.api("PUT", `/rooms/${encodeURIComponent(roomId)}/typing/${encodeURIComponent(human.userId)}`, {
      token: human.accessToken,
      body: { typing: true, timeout: 30_000 },
    });
    await rx.next((r) =>
      (
        (r.body.ephemeral as { type: string; room_id: string; content: { user_ids?: string[] } }[]) ?? []
      ).some(
        (e) =>
          e.type === "m.typing" &&
          e.room_id === roomId &&
          e.content.user_ids?.includes(human.userId) === true,
      ),
    );
  });

  it("pushes private read receipts of its namespace users only (spec: MUST)", async () => {
    const human = await hs.register("reader");
    const room = await hs.api("POST", "/createRoom", {
      token: human.accessToken,
      body: { invite: ["@br_alice:localhost"] },
    });
    const roomId = room.json.room_id as string;
    await as("POST", `/rooms/${encodeURIComponent(roomId)}/join?user_id=@br_alice:localhost`, {});
    const sent = await hs.api("PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/r1`, {
      token: human.accessToken,
      body: { msgtype: "m.text", body: "read me" },
    });
    const eventId = sent.json.event_id as string;
    const receipt = (token: string, type: string, query = "") =>
      hs.api(
        "POST",
        `/rooms/${encodeURIComponent(roomId)}/receipt/${type}/${encodeURIComponent(eventId)}${query}`,
        {
          token,
          body: {},
        },
      );
    assert.equal((await receipt(human.accessToken, "m.read.private")).status, 200);
    assert.equal(
      (await receipt("as_secret_token", "m.read.private", "?user_id=@br_alice:localhost")).status,
      200,
    );
    assert.equal((await receipt(human.accessToken, "m.read")).status, 200);
    type Ephemeral = {
      type: string;
      room_id: string;
      content: Record<string, Record<string, Record<string, unknown>>>;
    };
    const receiptsOf = (r: Received, type: string) =>
      ((r.body.ephemeral as Ephemeral[] | undefined) ?? [])
        .filter((e) => e.type === "m.receipt" && e.room_id === roomId)
        .flatMap((e) => Object.keys(e.content[eventId]?.[type] ?? {}));
    // The public receipt was made last: once it is pushed, the private ones were too (or never).
    await rx.next((r) => receiptsOf(r, "m.read").includes(human.userId));
    const privateOnes = rx.got.filter((r) => r.accepted).flatMap((r) => receiptsOf(r, "m.read.private"));
    assert.ok(privateOnes.includes("@br_alice:localhost"), "its own user's private receipt is pushed");
    assert.ok(!privateOnes.includes(human.userId), "another user's private receipt is not");
  });

  it("stops pushing a room's events once its users left it", async () => {
    const human = await hs.register("leaver");
    const left = await hs.api("POST", "/createRoom", {
      token: human.accessToken,
      body: { invite: ["@br_alice:localhost"] },
    });
    const leftId = left.json.room_id as string;
    await as("POST", `/rooms/${encodeURIComponent(leftId)}/join?user_id=@br_alice:localhost`, {});
    const kick = await hs.api("POST", `/rooms/${encodeURIComponent(leftId)}/kick`, {
      token: human.accessToken,
      body: { user_id: "@br_alice:localhost" },
    });
    assert.equal(kick.status, 200, JSON.stringify(kick.json));
    await hs.api("PUT", `/rooms/${encodeURIComponent(leftId)}/send/m.room.message/gone1`, {
      token: human.accessToken,
      body: { msgtype: "m.text", body: "after the kick" },
    });
    // A later event in a room its user is in: once it is pushed, the above were too (or never).
    const still = await hs.api("POST", "/createRoom", {
      token: human.accessToken,
      body: { invite: ["@br_alice:localhost"] },
    });
    const stillId = still.json.room_id as string;
    await as("POST", `/rooms/${encodeURIComponent(stillId)}/join?user_id=@br_alice:localhost`, {});
    await hs.api("PUT", `/rooms/${encodeURIComponent(stillId)}/send/m.room.message/here1`, {
      token: human.accessToken,
      body: { msgtype: "m.text", body: "still here" },
    });
    await rx.next((r) => events(r).some((e) => e.content.body === "still here"));
    const pushed = rx.got.filter((r) => r.accepted);
    assert.ok(
      pushed.flatMap(events).some((e) => e.content.membership === "leave"),
      "the kick is pushed",
    );
    assert.ok(!pushed.flatMap(events).some((e) => e.content.body === "after the kick"));
  });

  it("pushes to-device messages with their recipient, and MSC3202 key counts and device lists", async () => {
    const deviceless = await as("POST", "/keys/upload?user_id=@br_alice:localhost", { one_time_keys: {} });
    assert.equal(deviceless.status, 400);
    const keys = await as("POST", "/keys/upload?user_id=@br_alice:localhost&device_id=BRDEV", {
      one_time_keys: { "signed_curve25519:AAAAAQ": { key: "k1", signatures: {} } },
    });
    assert.equal(keys.status, 200, JSON.stringify(keys.json));
    const counts = await rx.next((r) => {
      const c = r.body["org.matrix.msc3202.device_one_time_keys_count"] as
        | Record<string, Record<string, Record<string, number>>>
        | undefined;
      return c?.["@br_alice:localhost"]?.BRDEV?.signed_curve25519 === 1;
    });
    assert.deepEqual(
      counts.body["org.matrix.msc3202.device_one_time_key_counts"],
      counts.body["org.matrix.msc3202.device_one_time_keys_count"],
    );
    const human = await hs.register("sender2");
    await hs.api("PUT", "/sendToDevice/m.test/td1", {
      token: human.accessToken,
      body: { messages: { "@br_alice:localhost": { BRDEV: { hello: "device" } } } },
    });
    const td = await rx.next((r) =>
      ((r.body["de.sorunome.msc2409.to_device"] as Record<string, unknown>[] | undefined) ?? []).some(
        (m) => m.type === "m.test",
      ),
    );
    const m = (td.body["de.sorunome.msc2409.to_device"] as Record<string, unknown>[]).find(
      (x) => x.type === "m.test",
    )!;
    assert.equal(m.to_user_id, "@br_alice:localhost");
    assert.equal(m.to_device_id, "BRDEV");
    assert.equal(m.sender, human.userId);
    // A room member changing its keys shows up in device_lists.
    const room = await hs.api("POST", "/createRoom", {
      token: human.accessToken,
      body: { invite: ["@br_alice:localhost"] },
    });
    await as("POST", `/rooms/${encodeURIComponent(room.json.room_id)}/join?user_id=@br_alice:localhost`, {});
    await hs.api("POST", "/keys/upload", {
      token: human.accessToken,
      body: {
        device_keys: {
          user_id: human.userId,
          device_id: human.deviceId,
          algorithms: ["m.olm.v1.curve25519-aes-sha2"],
          keys: { [`curve25519:${human.deviceId}`]: "c", [`ed25519:${human.deviceId}`]: "e" },
          signatures: {},
        },
      },
    });
    await rx.next((r) => {
      const lists = r.body["org.matrix.msc3202.device_lists"] as { changed?: string[] } | undefined;
      return lists?.changed?.includes(human.userId) === true;
    });
  });

  it("refuses an alias in an exclusive namespace to others", async () => {
    const human = await hs.register("aliaser");
    const room = await hs.api("POST", "/createRoom", { token: human.accessToken, body: {} });
    const res = await hs.api("PUT", `/directory/room/${encodeURIComponent("#br_room:localhost")}`, {
      token: human.accessToken,
      body: { room_id: room.json.room_id },
    });
    assert.equal(res.status, 400);
    assert.equal(res.json.errcode, "M_EXCLUSIVE");
  });
});

describe("devserver appservice transactions across a restart, with MSC2409's unstable flag only", () => {
  it("resends the transaction in flight with the same ID and body after a restart", async () => {
    const rx = await receiver(Number.POSITIVE_INFINITY);
    const dir = mkdtempSync(join(tmpdir(), "kr-as-restart-"));
    const reg: Registration = {
      id: "legacy",
      url: rx.url,
      as_token: "legacy_as_token",
      hs_token: "legacy_hs_token",
      sender_localpart: "legacybot",
      namespaces: { users: [{ exclusive: true, regex: "@lg_.*" }] },
      "de.sorunome.msc2409.push_ephemeral": true,
    };
    const options = {
      dbPath: join(dir, "hs.sqlite"),
      memory: false,
      appservices: [reg],
      appserviceRetry: { baseMs: 20, maxMs: 100 },
    };
    let hs = await startTestDevServer(options);
    try {
      const made = await hs.api("POST", "/register", {
        token: reg.as_token,
        body: { type: "m.login.application_service", username: "lg_x", inhibit_login: true },
      });
      assert.equal(made.status, 200);
      const human = await hs.register("restarter");
      await hs.api("POST", "/createRoom", {
        token: human.accessToken,
        body: { invite: ["@lg_x:localhost"] },
      });
      // Refused at least twice: the transaction is in flight when the server stops.
      while (rx.got.length < 2) await new Promise((r) => setTimeout(r, 10));
      await hs.close();
      const first = rx.got[0]!;
      rx.failNext(0);
      hs = await startTestDevServer(options);
      const accepted = await rx.next(() => true);
      assert.equal(accepted.txnId, first.txnId);
      assert.deepEqual(accepted.body, first.body);
      // The unstable flag names the fields the unstable way; without org.matrix.msc3202, no key data.
      assert.ok("de.sorunome.msc2409.ephemeral" in accepted.body);
      assert.ok("de.sorunome.msc2409.to_device" in accepted.body);
      assert.ok(!("ephemeral" in accepted.body));
      assert.ok(!Object.keys(accepted.body).some((k) => k.startsWith("org.matrix.msc3202")));
      assert.ok(
        events(accepted).some((e) => e.type === "m.room.member" && e.content.membership === "invite"),
      );
    } finally {
      await hs.close();
      await rx.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
