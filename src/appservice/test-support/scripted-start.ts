// A scripted homeserver for the tests of a virtual user's start through an `Appservice`: the user
// ME is in ROOM, and its start waits (when it creates its device, or once its client is restored)
// until released, so transactions come while it starts. Faults can be armed to make a start fail;
// the users its key queries asked for are counted.
import type { MatrixClient } from "../../client/index.ts";
import type { Logger } from "../../client/logger.ts";
import type { FetchLike } from "../../client/transport.ts";
import type { Registration } from "../../wire/appservice.ts";
import { Appservice, type AppserviceOptions } from "../appservice.ts";
import { parseTransaction } from "../transaction.ts";

export const ME = "@v_me:hs";
export const ROOM = "!r:hs";

/** A registration `id` whose users are `@v_*`. */
export const registrationOf = (id: string): Registration => ({
  id,
  url: null,
  as_token: `as_token_${id}`,
  hs_token: `hs_token_${id}`,
  sender_localpart: "bot",
  namespaces: { users: [{ exclusive: true, regex: "@v_.*" }] },
});

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** A text message in ROOM from Alice, with event ID and body `id`. */
export const message = (id: string) => ({
  event_id: id,
  type: "m.room.message",
  sender: "@alice:hs",
  room_id: ROOM,
  origin_server_ts: 1,
  content: { msgtype: "m.text", body: id },
});

/** A transaction of messages (see {@link message}) with these event IDs. */
export const txnOf = (...ids: string[]) => parseTransaction({ events: ids.map(message) });

/** What the scripted homeserver fails at (until healed): a step of the start and how. */
export type Fault = "state-500" | "sync-network";

/**
 * Where a start waits: when it creates its device (before its client is restored), or when it
 * reads its key counts (after: its crypto store is open and has asked for its own devices).
 */
export type PauseAt = "device" | "key-counts";

/**
 * A homeserver in which ME is in ROOM. Its start waits at `pauseAt` until `release()` (`paused()`
 * resolves once it waits); `fail` arms a fault for the next start.
 */
export function scripted(pauseAt: PauseAt = "device") {
  let arrived: () => void = () => {};
  let paused = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  let release: () => void = () => {};
  let released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const faults = new Set<Fault>();
  let deviceCalls = 0;
  /** The users each `/keys/query` asked for, in order. */
  const queries: string[][] = [];
  const fetch: FetchLike = async (url, init) => {
    const p = new URL(url).pathname;
    const method = init.method ?? "GET";
    if (p.endsWith("/account/whoami")) return json({ user_id: "@bot:hs" });
    if (p.endsWith("/register")) return json({ errcode: "M_USER_IN_USE", error: "in use" }, 400);
    if (method === "PUT" && p.includes("/devices/")) {
      deviceCalls++;
      if (pauseAt === "device") {
        arrived();
        await released;
      }
      return json({});
    }
    if (p.endsWith("/keys/upload")) {
      // The empty upload that reads the key counts comes after the client is restored.
      if (pauseAt === "key-counts" && init.body === "{}") {
        arrived();
        await released;
      }
      return json({ one_time_key_counts: { signed_curve25519: 50 } });
    }
    if (p.endsWith("/keys/query")) {
      const body = JSON.parse(String(init.body ?? "{}")) as { device_keys?: Record<string, unknown> };
      const users = Object.keys(body.device_keys ?? {});
      queries.push(users);
      // Users without devices (the user's own device among them: its keys are not checked here).
      return json({ device_keys: Object.fromEntries(users.map((u) => [u, {}])) });
    }
    if (p.endsWith("/joined_rooms")) return json({ joined_rooms: [ROOM] });
    if (p.endsWith("/state")) {
      if (faults.has("state-500")) return json({ errcode: "M_UNKNOWN", error: "boom" }, 500);
      const own = { type: "m.room.member", state_key: ME, sender: ME, content: { membership: "join" } };
      return json([{ ...own, event_id: "$own", room_id: ROOM, origin_server_ts: 0 }]);
    }
    if (p.endsWith("/sync")) {
      if (faults.has("sync-network")) throw new TypeError("fetch failed");
      return json({ next_batch: "s" });
    }
    return json({ errcode: "M_NOT_FOUND", error: "not here" }, 404);
  };
  return {
    fetch,
    paused: () => paused,
    release: () => release(),
    /** The next start pauses again. */
    rearm() {
      paused = new Promise<void>((resolve) => {
        arrived = resolve;
      });
      released = new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    fail: (f: Fault) => faults.add(f),
    heal: () => faults.clear(),
    deviceCalls: () => deviceCalls,
    /** How many `/keys/query` requests asked for `userId`'s devices. */
    queriesFor: (userId: string) => queries.filter((users) => users.includes(userId)).length,
  };
}

/**
 * An appservice over `hs` (started) whose user ME (device DEV) is starting and waits where `hs`
 * pauses it: `starting` is `user()`'s promise. The caller releases `hs` and closes `as`.
 */
export async function startingMe(
  hs: ReturnType<typeof scripted>,
  registration: Registration,
  options: {
    encryption?: boolean;
    logger: Logger;
    onTransaction?: AppserviceOptions["onTransaction"];
    dataDir?: string;
  },
): Promise<{ as: Appservice; starting: Promise<MatrixClient> }> {
  const as = new Appservice({
    registration,
    homeserverUrl: "https://hs.invalid",
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    ...(options.encryption === undefined ? {} : { encryption: options.encryption }),
    ...(options.onTransaction === undefined ? {} : { onTransaction: options.onTransaction }),
    fetch: hs.fetch,
    logger: options.logger,
    clientOptions: { fillTimelineGaps: false },
  });
  try {
    await as.start();
    const starting = as.user(ME, { deviceId: "DEV" });
    await hs.paused();
    return { as, starting };
  } catch (e) {
    hs.release();
    await as.close();
    throw e;
  }
}
