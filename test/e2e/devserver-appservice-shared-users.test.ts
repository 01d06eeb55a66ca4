// The devserver's to-device delivery to an appservice whose user namespace is not exclusive (a bot
// that watches everyone's traffic): the appservice gets the messages of those users' devices, and
// the devices still get them in their own sync, as Synapse does. Only messages of users in an
// exclusive namespace (the appservice's alone) are dropped once the appservice has them.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { startTestDevServer } from "../support/devserver.ts";

const TO_DEVICE = "de.sorunome.msc2409.to_device";

test("a to-device message for a user of a shared namespace reaches both the appservice and the device", async () => {
  const got: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      got.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>);
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const hs = await startTestDevServer({
    appservices: [
      {
        id: "watcher",
        url,
        as_token: "watcher_as_token",
        hs_token: "watcher_hs_token",
        sender_localpart: "watcher",
        namespaces: { users: [{ exclusive: false, regex: "@.*:localhost" }] },
        receive_ephemeral: true,
      },
    ],
    appserviceRetry: { baseMs: 20, maxMs: 100 },
  });
  const messages = (type: string) =>
    got.flatMap((b) =>
      ((b[TO_DEVICE] as { type: string }[] | undefined) ?? []).filter((m) => m.type === type),
    );
  try {
    const alice = await hs.register("alice");
    const bob = await hs.register("bob");
    const first = await hs.api("GET", "/sync?timeout=0", { token: alice.accessToken });
    await hs.api("PUT", "/sendToDevice/m.test/t1", {
      token: bob.accessToken,
      body: { messages: { [alice.userId]: { [alice.deviceId]: { hello: 1 } } } },
    });
    while (messages("m.test").length === 0) await new Promise<void>((r) => waiters.push(r));
    const next = await hs.api("GET", `/sync?timeout=0&since=${first.json.next_batch}`, {
      token: alice.accessToken,
    });
    const own = (next.json.to_device?.events ?? []) as { type: string; content: unknown }[];
    assert.deepEqual(
      own.filter((e) => e.type === "m.test").map((e) => e.content),
      [{ hello: 1 }],
      "the device gets its message",
    );
    // A later transaction does not carry it again.
    await hs.api("PUT", "/sendToDevice/m.later/t2", {
      token: bob.accessToken,
      body: { messages: { [alice.userId]: { [alice.deviceId]: { n: 2 } } } },
    });
    while (messages("m.later").length === 0) await new Promise<void>((r) => waiters.push(r));
    assert.equal(messages("m.test").length, 1, "the appservice got it once");
  } finally {
    await hs.close();
    await new Promise<void>((resolve) => {
      receiver.close(() => resolve());
      receiver.closeAllConnections();
    });
  }
});

test("an appservice cannot register a user in another appservice's exclusive namespace", async () => {
  const registration = (id: string, exclusive: boolean, regex: string) => ({
    id,
    url: null,
    as_token: `${id}_as_token`,
    hs_token: `${id}_hs_token`,
    sender_localpart: `${id}bot`,
    namespaces: { users: [{ exclusive, regex }] },
  });
  const hs = await startTestDevServer({
    appservices: [
      registration("bridge", true, "@br_.*:localhost"),
      registration("watcher", false, "@.*:localhost"),
    ],
  });
  try {
    const register = (token: string, username: string) =>
      hs.api("POST", "/register", { token, body: { type: "m.login.application_service", username } });
    const taken = await register("watcher_as_token", "br_alice");
    assert.equal(taken.status, 400, JSON.stringify(taken.json));
    assert.equal(taken.json.errcode, "M_EXCLUSIVE");
    assert.equal((await register("bridge_as_token", "br_alice")).status, 200, "its owner can");
    assert.equal((await register("watcher_as_token", "carol")).status, 200, "outside it, the other can");
  } finally {
    await hs.close();
  }
});
