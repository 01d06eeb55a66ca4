// One way to make a peer of any kind, so a test can loop over client pairs.
import type { TestContext } from "node:test";
import { scaledMs } from "../budget.ts";
import { skipReasonForNio } from "../python.ts";
import { JsSdkPeer } from "./jssdk.ts";
import { NioPeer } from "./nio.ts";
import type { Peer, PeerKind } from "./types.ts";

export const PEER_KINDS: readonly PeerKind[] = ["js-sdk", "nio"];

/**
 * Per-test limit for interop tests (`it(name, { timeout: PEER_TEST_TIMEOUT_MS }, …)`): a test takes
 * about a second, but on a loaded shared machine a Python peer alone can take seconds to start.
 * Scaled by the machine's load when the test file loads (test/support/budget.ts); the waits inside
 * a test are judged again by load when they run out.
 */
export const PEER_TEST_TIMEOUT_MS = scaledMs(4 * 60_000);

let nameCounter = 0;

/** A user name unique within this test process (the files it runs share the counter). */
export function uniqueUsername(kind: PeerKind): string {
  nameCounter += 1;
  return `${kind === "nio" ? "nio" : "js"}user${nameCounter}`;
}

/** The password the helpers below give `username` (so a test can log in a second device). */
export function passwordFor(username: string): string {
  return `pw-${username}-correct horse`;
}

/** Registers a new user (`uniqueUsername` unless named) with password `passwordFor(name)`. */
export function registerNewPeer(kind: PeerKind, baseUrl: string, name = uniqueUsername(kind)): Promise<Peer> {
  return registerPeer(kind, baseUrl, name, passwordFor(name));
}

/** Registers `username` with a client of `kind`; the peer is syncing and its device keys are uploaded. */
export function registerPeer(
  kind: PeerKind,
  baseUrl: string,
  username: string,
  password: string,
): Promise<Peer> {
  switch (kind) {
    case "js-sdk":
      return JsSdkPeer.register(baseUrl, username, password);
    case "nio":
      return NioPeer.register(baseUrl, username, password);
  }
}

/** Logs in as an existing user with a client of `kind`: a new device unless `deviceId` names one. */
export function loginPeer(
  kind: PeerKind,
  baseUrl: string,
  username: string,
  password: string,
  deviceId?: string,
): Promise<Peer> {
  const options = deviceId ? { deviceId } : {};
  switch (kind) {
    case "js-sdk":
      return JsSdkPeer.login(baseUrl, username, password, options);
    case "nio":
      return NioPeer.login(baseUrl, username, password, options);
  }
}

/** Why a peer of `kind` cannot run here (after printing the loud `SKIPPED:` line), or undefined. */
export function unavailableReason(kind: PeerKind): string | undefined {
  return kind === "nio" ? skipReasonForNio() : undefined;
}

/** Skips `t` (loudly) when any of `kinds` is unavailable; returns true when it did. */
export function skipUnlessAvailable(t: TestContext, kinds: readonly PeerKind[]): boolean {
  for (const kind of new Set(kinds)) {
    const reason = unavailableReason(kind);
    if (reason) {
      t.skip(reason);
      return true;
    }
  }
  return false;
}

/** Closes every peer, even when some fail to close; for `finally` blocks. */
export async function closePeers(peers: readonly Peer[]): Promise<void> {
  await Promise.allSettled(peers.map((p) => p.close()));
}
