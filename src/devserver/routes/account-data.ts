// Global and per-room account data, and the push-rules document clients read at start-up.
import * as z from "../../wire/zod.ts";
import { badJson, forbidden, MatrixError, notFound } from "../errors.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody, type RouteRequest } from "../router.ts";
import type { Authed, JsonObject } from "../types.ts";

const json = z.record(z.string(), z.unknown());

/** Longest room tag name accepted (the spec's limit). */
export const MAX_TAG_BYTES = 255;

/**
 * Most bytes of account data (global, per room and room tags together) one user may keep; a write
 * that would pass it is refused with 413 M_TOO_LARGE.
 */
export const MAX_ACCOUNT_DATA_BYTES_PER_USER = 16 * 1024 * 1024;

/** Types the server manages itself; clients use the dedicated endpoints instead. */
const SERVER_MANAGED = new Set(["m.fully_read", "m.push_rules"]);

const EMPTY_PUSH_RULES: JsonObject = {
  global: { override: [], content: [], room: [], sender: [], underride: [] },
};

export function registerAccountDataRoutes({ hs, router }: RouteContext): void {
  /** Stores one entry within the user's bound (call inside a transaction). */
  const store = (userId: string, roomId: string, type: string, content: string): void => {
    if (
      hs.misc.accountDataBytesBesides(userId, roomId, type) + Buffer.byteLength(content) >
      MAX_ACCOUNT_DATA_BYTES_PER_USER
    ) {
      throw new MatrixError(
        413,
        "M_TOO_LARGE",
        `Account data is limited to ${MAX_ACCOUNT_DATA_BYTES_PER_USER} bytes per user`,
      );
    }
    hs.misc.putAccountData(userId, roomId, type, content, hs.stream.next());
  };
  const owner = (req: RouteRequest): Authed => {
    const a = authed(req);
    if (req.params.user !== a.userId) throw forbidden("Cannot access another user's account data");
    return a;
  };
  const put = (a: Authed, roomId: string, type: string, content: JsonObject) => {
    if (SERVER_MANAGED.has(type)) throw badJson(`Cannot set ${type} through this API`);
    hs.tx(() => store(a.userId, roomId, type, JSON.stringify(content)));
    hs.notifier.notify([a.userId]);
    return { json: {} };
  };
  const get = (a: Authed, roomId: string, type: string) => {
    const c = hs.misc.getAccountData(a.userId, roomId, type);
    if (c === undefined) throw notFound("Account data not found");
    return { json: JSON.parse(c) as unknown };
  };
  const checkRoom = (roomId: string): void => {
    if (!roomId.startsWith("!")) throw new MatrixError(400, "M_INVALID_PARAM", "Invalid room ID");
  };

  router.client("PUT", "/user/:user/account_data/:type", (req) =>
    put(owner(req), "", req.params.type!, jsonBody(req, json)),
  );
  router.client("GET", "/user/:user/account_data/:type", (req) => get(owner(req), "", req.params.type!));
  router.client("PUT", "/user/:user/rooms/:room/account_data/:type", (req) => {
    checkRoom(req.params.room!);
    return put(owner(req), req.params.room!, req.params.type!, jsonBody(req, json));
  });
  router.client("GET", "/user/:user/rooms/:room/account_data/:type", (req) => {
    checkRoom(req.params.room!);
    return get(owner(req), req.params.room!, req.params.type!);
  });

  // Room tags live in the room's `m.tag` account data, so sync carries them like any other.
  const tagsOf = (userId: string, roomId: string): Record<string, JsonObject> => {
    const c = hs.misc.getAccountData(userId, roomId, "m.tag");
    const tags = c !== undefined ? (JSON.parse(c) as { tags?: Record<string, JsonObject> }).tags : undefined;
    return tags ?? {};
  };
  const writeTags = (a: Authed, roomId: string, tags: Record<string, JsonObject>) => {
    hs.tx(() => store(a.userId, roomId, "m.tag", JSON.stringify({ tags })));
    hs.notifier.notify([a.userId]);
  };
  router.client("GET", "/user/:user/rooms/:room/tags", (req) => {
    const a = owner(req);
    checkRoom(req.params.room!);
    return { json: { tags: tagsOf(a.userId, req.params.room!) } };
  });
  router.client("PUT", "/user/:user/rooms/:room/tags/:tag", (req) => {
    const a = owner(req);
    checkRoom(req.params.room!);
    const body = jsonBody(req, z.looseObject({ order: z.optional(z.number().check(z.gte(0), z.lte(1))) }));
    if (Buffer.byteLength(req.params.tag!) > MAX_TAG_BYTES) throw badJson("Tag name too long");
    writeTags(a, req.params.room!, { ...tagsOf(a.userId, req.params.room!), [req.params.tag!]: body });
    return { json: {} };
  });
  router.client("DELETE", "/user/:user/rooms/:room/tags/:tag", (req) => {
    const a = owner(req);
    checkRoom(req.params.room!);
    const { [req.params.tag!]: _gone, ...rest } = tagsOf(a.userId, req.params.room!);
    writeTags(a, req.params.room!, rest);
    return { json: {} };
  });

  // This server evaluates no push rules; it stores none and reports the empty rule set.
  router.client("GET", "/pushrules/", (req) => {
    const a = authed(req);
    const c = hs.misc.getAccountData(a.userId, "", "m.push_rules");
    return { json: c !== undefined ? (JSON.parse(c) as unknown) : EMPTY_PUSH_RULES };
  });
}
