// The interop peer drivers themselves: the keys they report are the ones the server holds, and every
// failure surfaces as a typed PeerError (never a hang, never a stray process).
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";
import {
  bodyIs,
  JsSdkPeer,
  NioPeer,
  PEER_TEST_TIMEOUT_MS,
  type Peer,
  PeerError,
  type PeerErrorCode,
  type PeerKind,
  redactTokens,
} from "../support/peers/index.ts";
import { skipReasonForNio } from "../support/python.ts";

const KINDS: PeerKind[] = ["js-sdk", "nio"];
let counter = 0;

function register(kind: PeerKind, baseUrl: string, name: string): Promise<Peer> {
  return kind === "nio" ? NioPeer.register(baseUrl, name, "pw") : JsSdkPeer.register(baseUrl, name, "pw");
}

function isPeerError(code: PeerErrorCode): (e: unknown) => boolean {
  return (e) => e instanceof PeerError && e.code === code;
}

describe("interop peer drivers", () => {
  let server: TestDevServer;
  before(async () => {
    server = await startTestDevServer();
  });
  after(async () => {
    await server.close();
  });

  for (const kind of KINDS) {
    const skip = (t: TestContext): boolean => {
      const reason = kind === "nio" ? skipReasonForNio() : undefined;
      if (reason) t.skip(reason);
      return reason !== undefined;
    };

    it(`${kind}: reports the device and identity keys the server publishes`, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skip(t)) return;
      const peer = await register(kind, server.baseUrl, `drv${kind.replace("-", "")}${++counter}`);
      try {
        const observer = await server.register();
        const q = await server.api("POST", "/keys/query", {
          token: observer.accessToken,
          body: { device_keys: { [peer.userId]: [] } },
        });
        assert.equal(q.status, 200);
        const device = q.json.device_keys[peer.userId][peer.deviceId];
        assert.ok(device, "the peer uploaded its device keys on its first sync");
        const keys = await peer.identityKeys();
        assert.equal(device.keys[`curve25519:${peer.deviceId}`], keys.curve25519);
        assert.equal(device.keys[`ed25519:${peer.deviceId}`], keys.ed25519);
      } finally {
        await peer.close();
      }
    });

    it(`${kind}: waits time out with TIMEOUT; use after close is CLOSED; close is idempotent`, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skip(t)) return;
      const peer = await register(kind, server.baseUrl, `drv${kind.replace("-", "")}${++counter}`);
      try {
        const roomId = await peer.createRoom({ name: "quiet" });
        await assert.rejects(peer.waitForMessage(roomId, bodyIs("never sent"), 300), isPeerError("TIMEOUT"));
        await assert.rejects(
          peer.waitForMembership(roomId, "@nobody:localhost", "join", 300),
          isPeerError("TIMEOUT"),
        );
      } finally {
        await peer.close();
        await peer.close();
      }
      await assert.rejects(peer.sendText("!room:localhost", "late"), isPeerError("CLOSED"));
      if (peer instanceof NioPeer) {
        const pid = peer.pid;
        assert.ok(pid);
        assert.throws(() => process.kill(pid, 0), { code: "ESRCH" }, "the Python process is gone");
      }
    });

    it(`${kind}: a refused login is REQUEST_FAILED with the server's errcode`, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skip(t)) return;
      const name = `drv${kind.replace("-", "")}${++counter}`;
      await (await register(kind, server.baseUrl, name)).close();
      const login = kind === "nio" ? NioPeer.login : JsSdkPeer.login;
      await assert.rejects(
        login(server.baseUrl, name, "wrong password"),
        (e: unknown) => isPeerError("REQUEST_FAILED")(e) && (e as PeerError).errcode === "M_FORBIDDEN",
      );
    });
  }

  it("nio: access tokens are redacted from the process's error output", () => {
    assert.equal(
      redactTokens("GET http://h/sync?access_token=syt_a.b_c&since=s1 failed\nAuthorization: Bearer syt_x"),
      "GET http://h/sync?access_token=<redacted>&since=s1 failed\nAuthorization: Bearer <redacted>",
    );
  });

  it("nio: a crashed process fails pending and later requests with PEER_EXITED", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipReasonForNio()) return t.skip("matrix-nio not installed");
    const peer = await NioPeer.register(server.baseUrl, `drvcrash${++counter}`, "pw");
    try {
      const pending = peer.syncOnce(5_000); // long-polls: still in flight when the process dies
      peer.kill();
      await assert.rejects(pending, isPeerError("PEER_EXITED"));
      await assert.rejects(peer.identityKeys(), isPeerError("PEER_EXITED"));
    } finally {
      await peer.close();
    }
  });
});
