// Helpers of the complement-crypto scenario tests: Keyroom clients (optionally behind a fetch that
// injects failures), peers we did not write, and the steps the scenarios share.
import assert from "node:assert/strict";
import { join } from "node:path";
import { it, type TestContext } from "node:test";
import type { FetchLike } from "../../src/client/http.ts";
import { type Clock, MatrixClient } from "../../src/client/index.ts";
import {
  closePeers,
  PEER_KINDS,
  PEER_TEST_TIMEOUT_MS,
  type Peer,
  type PeerKind,
  passwordFor,
  registerPeer,
  skipUnlessAvailable,
} from "../support/peers/index.ts";
import {
  type DevServerFixture,
  encryptedClient,
  type TestClient,
  uniq,
  watch,
} from "./e2ee-client-helpers.ts";

let fx: DevServerFixture;
/** The fixture the helpers below use (call once, at the top of a test file). */
export function useFixture(f: DevServerFixture): void {
  fx = f;
}

/** Syncs `t` until `pred` holds; bounded by attempts (each a short long-poll), not wall time. */
export async function syncUntil(
  t: TestClient,
  pred: () => boolean,
  what: string,
  attempts = 150,
): Promise<void> {
  for (let i = 0; i < attempts && !pred(); i++) await t.client.syncOnce({ timeoutMs: 200 });
  assert.ok(pred(), `not reached by sync: ${what}`);
}

/** A new registered Keyroom user, behind `fetch` and on `clock` when given. */
export async function keyroomUser(prefix = "kr", fetch?: FetchLike, clock?: Clock): Promise<TestClient> {
  const name = uniq(prefix);
  const storeDir = join(fx.dir, name);
  const client =
    fetch === undefined && clock === undefined
      ? encryptedClient(fx.hs, storeDir)
      : new MatrixClient({
          homeserverUrl: fx.hs.baseUrl,
          syncTimeoutMs: 0,
          syncFilter: { room: { timeline: { limit: 100 } } },
          ...(fetch === undefined ? {} : { fetch }),
          ...(clock === undefined ? {} : { clock }),
          encryption: { store: { directory: storeDir } },
        });
  fx.open.push(client);
  await client.register({ username: name, password: "pw" });
  return watch(client, name, storeDir);
}

/** The same Keyroom device again from its store, as after a process restart. */
export async function restart(t: TestClient): Promise<TestClient> {
  const userId = t.client.userId;
  await t.client.close();
  const client = new MatrixClient({
    homeserverUrl: fx.hs.baseUrl,
    syncTimeoutMs: 0,
    syncFilter: { room: { timeline: { limit: 100 } } },
    encryption: { store: { directory: t.storeDir }, restoreDeviceId: true },
  });
  fx.open.push(client);
  await client.login({ user: userId, password: "pw" });
  return watch(client, t.name, t.storeDir);
}

/** What Keyroom made of an event: its body once decrypted, whether it failed, its Megolm session. */
export function seen(t: TestClient, eventId: string) {
  const all = [...t.events, ...t.late].filter((e) => e.eventId === eventId);
  const last = all.at(-1);
  const ok = all.filter((e) => e.encryption?.decrypted === true).at(-1);
  return {
    present: last !== undefined,
    body: typeof ok?.content.body === "string" ? ok.content.body : undefined,
    failed: last !== undefined && last.encryption?.decrypted === false,
    sessionId: typeof last?.raw.content.session_id === "string" ? last.raw.content.session_id : undefined,
  };
}

let peerCount = 0;
export async function newPeer(kind: PeerKind, open: Peer[]): Promise<Peer> {
  const name = `cc${kind === "nio" ? "nio" : "js"}${++peerCount}${Date.now().toString(36)}`;
  const p = await registerPeer(kind, fx.hs.baseUrl, name, passwordFor(name));
  open.push(p);
  return p;
}

/** Keyroom creates an encrypted room (shared history), invites `peer`, who joins. */
export async function keyroomRoom(
  kr: TestClient,
  peer: Peer,
  extra: { rotationPeriodMessages?: number; rotationPeriodMs?: number } = {},
) {
  const rotation = {
    ...(extra.rotationPeriodMessages !== undefined
      ? { rotation_period_msgs: extra.rotationPeriodMessages }
      : {}),
    ...(extra.rotationPeriodMs !== undefined ? { rotation_period_ms: extra.rotationPeriodMs } : {}),
  };
  const roomId = await kr.client.createRoom({
    name: "complement",
    invite: [peer.userId],
    ...(Object.keys(rotation).length > 0
      ? {
          encrypted: false,
          initialState: [
            {
              type: "m.room.encryption",
              state_key: "",
              content: { algorithm: "m.megolm.v1.aes-sha2", ...rotation },
            },
          ],
        }
      : {}),
  });
  await peer.waitForMembership(roomId, peer.userId, "invite");
  await peer.join(roomId);
  await syncUntil(
    kr,
    () => kr.client.getRoom(roomId)?.getMember(peer.userId)?.membership === "join",
    "peer joined",
  );
  return roomId;
}

/** Keyroom sends; `peer` must decrypt it. Returns the Megolm session the peer saw. */
export async function krToPeer(kr: TestClient, peer: Peer, roomId: string, body: string): Promise<string> {
  const id = await kr.client.sendText(roomId, body);
  const m = await peer.waitForMessage(roomId, (x) => x.eventId === id && x.decrypted);
  assert.equal(m.body, body);
  assert.ok(m.sessionId);
  return m.sessionId;
}

/** `peer` sends; Keyroom must decrypt it. Returns the event ID. */
export async function peerToKr(peer: Peer, kr: TestClient, roomId: string, body: string): Promise<string> {
  const id = await peer.sendText(roomId, body);
  await syncUntil(kr, () => seen(kr, id).body !== undefined, `${body} decrypted by Keyroom`);
  assert.equal(seen(kr, id).body, body);
  return id;
}

/**
 * One test per peer kind. `unsupported` names the kinds that lack what the scenario needs (e.g.
 * nio has no key backup): their test is registered as skipped, with the reason.
 */
export function scenario(
  title: string,
  body: (kind: PeerKind, open: Peer[], t: TestContext) => Promise<void>,
  unsupported: Partial<Record<PeerKind, string>> = {},
): void {
  for (const kind of PEER_KINDS) {
    const why = unsupported[kind];
    if (why !== undefined) {
      it(`${title} (Keyroom + ${kind})`, { skip: why }, () => {});
      continue;
    }
    it(`${title} (Keyroom + ${kind})`, { timeout: PEER_TEST_TIMEOUT_MS }, async (t) => {
      if (skipUnlessAvailable(t, [kind])) return;
      const open: Peer[] = [];
      try {
        await body(kind, open, t);
      } finally {
        await closePeers(open);
      }
    });
  }
}
