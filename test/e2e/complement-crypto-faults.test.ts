// complement-crypto's scenarios about failing requests (it fails them in mitmproxy; here a `fetch`
// between Keyroom and the devserver does), with a peer we did not write on the other side: the
// request is retried and nothing is lost. SigkillBeforeKeysUploadResponse kills a Keyroom process
// (complement-login-process.ts) behind a proxy that holds back a /keys/upload response. See
// docs/security.md for the table.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe } from "node:test";
import { fileURLToPath } from "node:url";
import type { FetchLike } from "../../src/client/http.ts";
import { MatrixClient } from "../../src/client/index.ts";
import { loginPeer, passwordFor } from "../support/peers/index.ts";
import {
  keyroomRoom,
  keyroomUser,
  krToPeer,
  newPeer,
  peerToKr,
  scenario,
  syncUntil,
  useFixture,
} from "./complement-helpers.ts";
import type { LoginProcessConfig, LoginProcessLine } from "./complement-login-process.ts";
import { devServerFixture, eventById, uniq, watch } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-complement-faults-");
useFixture(fx);

/**
 * A fetch that answers the next `count` requests whose path matches `pattern` with a 502 (the
 * server never sees them) while `armed`; counts what it failed.
 */
function failing(pattern: RegExp) {
  const state = { armed: false, count: 1, failed: 0 };
  const fetchLike: FetchLike = async (input, init) => {
    if (state.armed && state.count > 0 && pattern.test(new URL(input).pathname)) {
      state.count--;
      state.failed++;
      return Response.json({ errcode: "M_UNKNOWN", error: "injected failure" }, { status: 502 });
    }
    return fetch(input, init);
  };
  return { state, fetch: fetchLike };
}

interface KeysUpload {
  device_keys?: { device_id?: string; keys?: Record<string, string> };
  one_time_keys?: Record<string, { key?: string }>;
  fallback_keys?: Record<string, { key?: string }>;
}

/**
 * An HTTP proxy in front of the devserver that records each POST /keys/upload (its body and the
 * server's status). `intercept`, when set, runs once after the server answered an upload it
 * matches (`when`); that response is then never sent (the client sees its connection drop).
 */
async function uploadProxy(target: string) {
  const state: {
    uploads: { request: KeysUpload; status: number }[];
    intercept?: { when: (request: KeysUpload) => boolean; run: () => Promise<void> };
  } = { uploads: [] };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    const relay = async (): Promise<void> => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? "/", target);
      const headers: Record<string, string> = {};
      for (const h of ["authorization", "content-type"]) {
        const v = req.headers[h];
        if (typeof v === "string") headers[h] = v;
      }
      let up: Response;
      try {
        up = await fetch(url, { method: req.method, headers, ...(body.length > 0 ? { body } : {}) });
      } catch {
        res.destroy();
        return;
      }
      const answer = Buffer.from(await up.arrayBuffer());
      if (req.method === "POST" && url.pathname.endsWith("/keys/upload")) {
        const request = JSON.parse(body.toString("utf8")) as KeysUpload;
        state.uploads.push({ request, status: up.status });
        const hook = state.intercept;
        if (hook?.when(request)) {
          state.intercept = undefined;
          await hook.run();
          res.destroy();
          return;
        }
      }
      res.writeHead(up.status, { "content-type": up.headers.get("content-type") ?? "application/json" });
      res.end(answer);
    };
    // A failure in the relay (a hook, a body that is not JSON) drops this connection, as a broken
    // proxy would: the client under test retries; nothing escapes as an unhandled rejection.
    req.on("end", () => void relay().catch(() => res.destroy()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    state,
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const LOGIN_PROCESS = fileURLToPath(new URL("./complement-login-process.ts", import.meta.url));

/** Starts complement-login-process.ts: a Keyroom process that logs in (uploading its keys) and syncs. */
function loginProcess(cfg: LoginProcessConfig) {
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", LOGIN_PROCESS, JSON.stringify(cfg)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const lines: LoginProcessLine[] = [];
  createInterface({ input: child.stdout }).on(
    "line",
    (l) => void lines.push(JSON.parse(l) as LoginProcessLine),
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return { child, lines, exited };
}

describe("complement-crypto scenarios: failing requests are retried (devserver)", () => {
  scenario("TestFailedKeysClaimRetries", async (kind, open) => {
    const f = failing(/\/keys\/claim$/);
    const kr = await keyroomUser("kr", f.fetch);
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    f.state.armed = true;
    await krToPeer(kr, peer, roomId, "after a failed claim");
    assert.equal(f.state.failed, 1, "the claim failed once");
  });

  scenario("TestFailedDeviceKeyDownloadRetries", async (kind, open) => {
    const f = failing(/\/keys\/query$/);
    f.state.armed = true;
    f.state.count = 2;
    const kr = await keyroomUser("kr", f.fetch);
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    await krToPeer(kr, peer, roomId, "after failed key queries");
    assert.ok(f.state.failed >= 1, "a key query failed");
  });

  scenario("TestClientRetriesSendToDevice", async (kind, open) => {
    const f = failing(/\/sendToDevice\//);
    const kr = await keyroomUser("kr", f.fetch);
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    f.state.armed = true;
    await krToPeer(kr, peer, roomId, "after a failed to-device send");
    assert.equal(f.state.failed, 1, "the room key's to-device send failed once");
  });

  scenario("TestToDeviceMessagesArentLostWhenKeysQueryFails", async (kind, open) => {
    // A new device of the peer user appears while Keyroom's key queries fail: the sync that tells
    // Keyroom about it (device list change) also carries that device's room key, and the query
    // Keyroom then makes for it fails, as does every later one. The room key must not be lost.
    const f = failing(/\/keys\/query$/);
    const kr = await keyroomUser("kr", f.fetch);
    const peer = await newPeer(kind, open);
    const roomId = await keyroomRoom(kr, peer);
    f.state.armed = true;
    f.state.count = Number.POSITIVE_INFINITY;
    const name = peer.userId.slice(1, peer.userId.indexOf(":"));
    const second = await loginPeer(kind, fx.hs.baseUrl, name, passwordFor(name));
    open.push(second);
    await second.waitForDevices(kr.client.userId, (ids) => ids.includes(kr.client.deviceId));
    const id = await peerToKr(second, kr, roomId, "while key queries fail");
    assert.ok(f.state.failed >= 1, "Keyroom's key query for the new device failed");
    const got = eventById(kr, id);
    assert.equal(got.encryption?.decrypted && got.encryption.senderDeviceId, second.deviceId);
  });

  scenario("TestFailedOneTimeKeyUploadRetries", async (kind, open) => {
    // Keyroom's first two /keys/upload (device keys and one-time keys) fail (the server never sees
    // them); it uploads them on a later sync, and a peer that has no session with it
    // yet claims one of its one-time keys and starts an Olm session.
    const f = failing(/\/keys\/upload$/);
    f.state.armed = true;
    f.state.count = 2;
    const kr = await keyroomUser("kr", f.fetch);
    assert.ok(f.state.failed >= 1, "the upload at registration failed");
    const claimer = await fx.hs.register(uniq("claimer"), "pw");
    const claimOne = async () => {
      const res = await fx.hs.api("POST", "/keys/claim", {
        token: claimer.accessToken,
        body: { one_time_keys: { [kr.client.userId]: { [kr.client.deviceId]: "signed_curve25519" } } },
      });
      return Object.values(
        (res.json.one_time_keys?.[kr.client.userId]?.[kr.client.deviceId] ?? {}) as Record<
          string,
          { fallback?: boolean }
        >,
      )[0];
    };
    assert.equal(await claimOne(), undefined, "nothing uploaded yet");
    let claimed: { fallback?: boolean } | undefined;
    for (let i = 0; i < 50 && claimed === undefined; i++) {
      await kr.client.syncOnce({ timeoutMs: 200 });
      claimed = await claimOne();
    }
    assert.equal(f.state.failed, 2, "a retry failed too");
    assert.ok(claimed, "a one-time key was uploaded after the failures");
    assert.notEqual(claimed.fallback, true, "a one-time key, not the fallback key");
    const peer = await newPeer(kind, open);
    const roomId = await peer.createRoom({ encrypted: true, invite: [kr.client.userId] });
    await syncUntil(kr, () => kr.client.getRoom(roomId)?.membership === "invite", "invited");
    await kr.client.joinRoom(roomId);
    await peer.waitForMembership(roomId, kr.client.userId, "join");
    await peerToKr(peer, kr, roomId, "over a one-time key uploaded late");
  });

  for (const at of ["FirstUpload", "OneTimeKeysUpload"] as const) {
    scenario(`TestSigkillBeforeKeysUploadResponse/${at}`, async (kind, open) => {
      // A Keyroom process logs in (a new device) and uploads its keys; it is SIGKILLed once the
      // server has stored an upload, before the response reaches it: its first one (device keys
      // and fallback key) or the first with one-time keys. The same device started again from
      // its store must upload again without a different key under an ID it already uploaded (the
      // server refuses that: matrix-rust-sdk#1415), and a peer must be able to talk to it.
      const name = uniq("sigkill");
      const { userId } = await fx.hs.register(name, "pw");
      const proxy = await uploadProxy(fx.hs.baseUrl);
      const directory = join(fx.dir, name);
      const first = loginProcess({ homeserverUrl: proxy.baseUrl, directory, userId, password: "pw" });
      try {
        proxy.state.intercept = {
          when: (r) => at === "FirstUpload" || Object.keys(r.one_time_keys ?? {}).length > 0,
          run: async () => {
            first.child.kill("SIGKILL");
            await first.exited;
          },
        };
        await first.exited;
        assert.equal(first.child.signalCode, "SIGKILL", `not killed: ${JSON.stringify(first.lines)}`);
        assert.equal(proxy.state.intercept, undefined, "killed at the upload");
        const killed = proxy.state.uploads.at(-1);
        assert.equal(killed?.status, 200, "the server stored the upload");
        const deviceKeys = proxy.state.uploads[0]?.request.device_keys;
        const deviceId = deviceKeys?.device_id;
        assert.ok(deviceId !== undefined, "the first upload has the device keys");

        const client = new MatrixClient({
          homeserverUrl: proxy.baseUrl,
          syncTimeoutMs: 0,
          syncFilter: { room: { timeline: { limit: 100 } } },
          encryption: { store: { directory }, restoreDeviceId: true },
        });
        fx.open.push(client);
        const before = proxy.state.uploads.length;
        await client.login({ user: userId, password: "pw" });
        assert.equal(client.deviceId, deviceId, "the same device, from its store");
        const kr = watch(client, name, directory);
        await client.syncOnce({ timeoutMs: 0 });
        assert.ok(
          proxy.state.uploads.length > before,
          "the restarted device uploads (it never saw the answer)",
        );
        const byId = new Map<string, string | undefined>();
        for (const { request, status } of proxy.state.uploads) {
          assert.equal(status, 200, "every upload accepted");
          if (request.device_keys !== undefined) {
            // Compared, never printed (assert.equal would show the keys).
            const same = JSON.stringify(request.device_keys.keys) === JSON.stringify(deviceKeys?.keys);
            assert.ok(same, "the same device keys");
          }
          const keys = [
            ...Object.entries(request.one_time_keys ?? {}),
            ...Object.entries(request.fallback_keys ?? {}).map(([id, k]) => [`fallback ${id}`, k] as const),
          ];
          for (const [id, key] of keys) {
            if (byId.has(id)) assert.ok(key.key === byId.get(id), `${id} uploaded with two keys`);
            byId.set(id, key.key);
          }
        }
        assert.ok(
          [...byId.keys()].some((id) => !id.startsWith("fallback")),
          "one-time keys uploaded",
        );

        const peer = await newPeer(kind, open);
        const roomId = await peer.createRoom({ encrypted: true, invite: [userId] });
        await syncUntil(kr, () => client.getRoom(roomId)?.membership === "invite", "invited");
        await client.joinRoom(roomId);
        await peer.waitForMembership(roomId, userId, "join");
        await peerToKr(peer, kr, roomId, "to the device that was killed");
        await krToPeer(kr, peer, roomId, "from the device that was killed");
      } finally {
        if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill("SIGKILL");
        await proxy.close();
      }
    });
  }
});
