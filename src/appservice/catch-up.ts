// What `/sync` would have given a virtual user's client at its start and transactions do not: the
// state of the rooms it is in that its client does not know yet, and its account data. Part of a
// user's start (appservice.ts), fed to its client as one sync response.
import { type HttpClient, type MatrixClient, path } from "../index.ts";
import { type SyncResponse, syncResponseSchema } from "../wire/index.ts";
import type { KnownKeyCounts } from "./user-sync.ts";

/**
 * The filter of the one `/sync` a virtual user's start makes for its account data (transactions
 * carry none): no presence, no timeline beyond what the server insists on, no state or ephemeral
 * events. Room account data is kept.
 */
const ACCOUNT_DATA_FILTER = JSON.stringify({
  presence: { types: [] },
  room: {
    timeline: { limit: 1, types: [] },
    state: { types: [] },
    ephemeral: { types: [] },
  },
});

/**
 * The state of rooms the user is in that its client does not know yet, and its account data
 * (global and per room), read fresh at every start so a client on a new machine, or after a
 * restart, has it. Fed as a sync whose token is `nextBatch()`, with the one-time key count the
 * server gave at start (`known`): the one the engine kept may be from before a restart (a fed
 * response without a count leaves it as it is, see user-sync.ts).
 */
export async function catchUp(
  http: HttpClient,
  client: MatrixClient,
  known: KnownKeyCounts,
  nextBatch: () => string,
): Promise<void> {
  const join: Record<string, Record<string, unknown>> = {};
  const joined = await client.joinedRoomIds();
  for (const roomId of joined) {
    if (client.getRoom(roomId)?.membership === "join") continue;
    join[roomId] = { state: { events: await client.fetchRoomState(roomId) } };
  }
  const accountData = await readAccountData(http, client.userId);
  for (const roomId of joined) {
    const events = accountData.rooms?.join?.[roomId]?.account_data?.events ?? [];
    if (events.length > 0) join[roomId] = { ...join[roomId], account_data: { events } };
  }
  const global = accountData.account_data?.events ?? [];
  if (Object.keys(join).length === 0 && global.length === 0) return;
  const counts = known.oneTimeKeyCounts;
  await client.feedSync(
    syncResponseSchema.parse({
      next_batch: nextBatch(),
      ...(global.length > 0 ? { account_data: { events: global } } : {}),
      rooms: { join },
      ...(counts !== undefined ? { device_one_time_keys_count: counts } : {}),
    }),
  );
}

/**
 * The user's account data, from one filtered `/sync` as the user without a device (so no device's
 * to-device messages are touched).
 */
function readAccountData(http: HttpClient, userId: string): Promise<SyncResponse> {
  return http.request({
    method: "GET",
    path: path`/_matrix/client/v3/sync`,
    // Offline: reading is not the user coming online (a sync sets presence otherwise).
    query: { user_id: userId, filter: ACCOUNT_DATA_FILTER, timeout: "0", set_presence: "offline" },
    schema: syncResponseSchema,
  });
}
