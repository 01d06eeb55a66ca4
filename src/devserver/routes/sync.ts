// /sync (long-polling) and filter storage.
import * as z from "../../wire/zod.ts";
import { forbidden, MatrixError, notFound } from "../errors.ts";
import type { Homeserver } from "../homeserver.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody } from "../router.ts";
import {
  buildSync,
  DEFAULT_TIMELINE_LIMIT,
  MAX_TIMELINE_LIMIT,
  parseToken,
  type SyncFilter,
  type SyncToken,
} from "../sync.ts";

/** Longest a /sync request is held open, whatever `timeout` asks for. */
export const MAX_SYNC_TIMEOUT_MS = 5 * 60_000;
/**
 * Most /sync long-polls one device may hold open at once; one more is answered 429
 * M_LIMIT_EXCEEDED (a client opening thousands would otherwise hold as many sockets and waiters).
 */
export const MAX_LONG_POLLS_PER_DEVICE = 10;
/** Largest stored filter definition. */
export const MAX_FILTER_BYTES = 64 * 1024;

const filterSchema = z.looseObject({
  room: z.optional(
    z.looseObject({
      include_leave: z.optional(z.boolean()),
      timeline: z.optional(z.looseObject({ limit: z.optional(z.number().check(z.int(), z.nonnegative())) })),
      state: z.optional(z.looseObject({ lazy_load_members: z.optional(z.boolean()) })),
    }),
  ),
});

type FilterJson = z.infer<typeof filterSchema>;

function toSyncFilter(f: FilterJson): SyncFilter {
  const limit = f.room?.timeline?.limit ?? DEFAULT_TIMELINE_LIMIT;
  return {
    timelineLimit: Math.min(Math.max(limit, 1), MAX_TIMELINE_LIMIT),
    lazyLoadMembers: f.room?.state?.lazy_load_members === true,
    includeLeave: f.room?.include_leave === true,
  };
}

function resolveFilter(hs: Homeserver, userId: string, raw: string | null): SyncFilter {
  if (raw === null) return toSyncFilter({});
  let text = raw;
  if (!raw.trimStart().startsWith("{")) {
    const id = Number(raw);
    const stored = Number.isSafeInteger(id) ? hs.accounts.getFilter(userId, id) : undefined;
    if (stored === undefined) throw new MatrixError(400, "M_INVALID_PARAM", "Unknown filter");
    text = stored;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new MatrixError(400, "M_INVALID_PARAM", "filter is not JSON");
  }
  const r = filterSchema.safeParse(parsed);
  if (!r.success) throw new MatrixError(400, "M_INVALID_PARAM", "Invalid filter");
  return toSyncFilter(r.data);
}

export function registerSyncRoutes({ hs, router }: RouteContext): void {
  /** Long-polls waiting, per device. */
  const polling = new Map<string, number>();
  router.client("GET", "/sync", async (req) => {
    const a = authed(req);
    const q = req.query;
    const sinceRaw = q.get("since");
    const since: SyncToken | undefined = sinceRaw !== null ? parseToken(sinceRaw) : undefined;
    const filter = resolveFilter(hs, a.userId, q.get("filter"));
    const fullState = q.get("full_state") === "true";
    const timeoutRaw = Number(q.get("timeout") ?? "0");
    const timeout = Number.isFinite(timeoutRaw) ? Math.min(Math.max(timeoutRaw, 0), MAX_SYNC_TIMEOUT_MS) : 0;
    const deadline = Date.now() + timeout;
    for (;;) {
      const built = buildSync(hs, a, since, filter, fullState);
      const remaining = deadline - Date.now();
      if (!built.empty || !since || fullState || remaining <= 0 || req.signal.aborted || hs.isClosed) {
        return { json: built.body };
      }
      const device = JSON.stringify([a.userId, a.deviceId]);
      const open = polling.get(device) ?? 0;
      if (open >= MAX_LONG_POLLS_PER_DEVICE) {
        throw new MatrixError(429, "M_LIMIT_EXCEEDED", "Too many /sync requests open for this device", {
          retry_after_ms: 1000,
        });
      }
      polling.set(device, open + 1);
      try {
        // Registered synchronously after building: nothing can slip in between.
        await hs.notifier.wait(a.userId, remaining, req.signal);
      } finally {
        const left = (polling.get(device) ?? 1) - 1;
        if (left === 0) polling.delete(device);
        else polling.set(device, left);
      }
      if (hs.isClosed || req.signal.aborted) return { json: built.body };
    }
  });

  router.client("POST", "/user/:user/filter", (req) => {
    const a = authed(req);
    if (req.params.user !== a.userId) throw forbidden("Cannot create filters for other users");
    if (req.rawBody.length > MAX_FILTER_BYTES) throw new MatrixError(413, "M_TOO_LARGE", "Filter too large");
    const body = jsonBody(req, filterSchema);
    return { json: { filter_id: String(hs.accounts.addFilter(a.userId, JSON.stringify(body))) } };
  });
  router.client("GET", "/user/:user/filter/:id", (req) => {
    const a = authed(req);
    if (req.params.user !== a.userId) throw forbidden("Cannot read other users' filters");
    const id = Number(req.params.id);
    const stored = Number.isSafeInteger(id) ? hs.accounts.getFilter(a.userId, id) : undefined;
    if (stored === undefined) throw notFound("No such filter");
    return { json: JSON.parse(stored) as unknown };
  });
}
