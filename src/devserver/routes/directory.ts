// Room aliases, the room directory and the user directory.
import * as z from "../../wire/zod.ts";
import { forbidden, MatrixError, notFound } from "../errors.ts";
import { roomPowerLevels, userPower } from "../room-auth.ts";
import { MAX_ALIAS_BYTES, MAX_ALIASES_PER_USER } from "../room-ops.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody, type RouteRequest } from "../router.ts";

/** Most rooms one page of the public room directory lists (`limit` asks for fewer; `since` pages on). */
export const MAX_PUBLIC_ROOMS_PAGE = 100;

export function registerDirectoryRoutes({ hs, router }: RouteContext): void {
  const checkAlias = (alias: string): void => {
    if (!/^#[^:\s]+:.+$/.test(alias) || Buffer.byteLength(alias) > MAX_ALIAS_BYTES) {
      throw new MatrixError(400, "M_INVALID_PARAM", "Invalid room alias");
    }
    if (!alias.endsWith(`:${hs.serverName}`)) {
      throw new MatrixError(400, "M_INVALID_PARAM", "Room alias must be on this server");
    }
  };
  router.client(
    "GET",
    "/directory/room/:alias",
    (req) => {
      const a = hs.rooms.getAlias(req.params.alias!);
      if (!a) throw notFound(`Room alias ${req.params.alias} not found`);
      return { json: { room_id: a.room_id, servers: [hs.serverName] } };
    },
    "optional",
  );
  router.client("PUT", "/directory/room/:alias", (req) => {
    const a = authed(req);
    const alias = req.params.alias!;
    checkAlias(alias);
    const body = jsonBody(req, z.object({ room_id: z.string().check(z.startsWith("!")) }));
    if (!hs.rooms.getRoom(body.room_id)) throw notFound("Unknown room");
    if (hs.rooms.membership(body.room_id, a.userId)?.membership !== "join") {
      throw forbidden("You must be in the room to add an alias");
    }
    const owner = hs.appservices.exclusiveAliasOwner(alias);
    if (owner && owner.reg.id !== a.appserviceId) {
      throw new MatrixError(400, "M_EXCLUSIVE", "This alias is reserved by an application service.");
    }
    if (hs.rooms.countAliasesBy(a.userId) >= MAX_ALIASES_PER_USER) {
      throw forbidden(`A user may create at most ${MAX_ALIASES_PER_USER} room aliases`);
    }
    if (!hs.rooms.putAlias(alias, body.room_id, a.userId)) {
      throw new MatrixError(409, "M_UNKNOWN", `Room alias ${alias} already exists`);
    }
    return { json: {} };
  });
  router.client("DELETE", "/directory/room/:alias", (req) => {
    const a = authed(req);
    const existing = hs.rooms.getAlias(req.params.alias!);
    if (!existing) throw notFound(`Room alias ${req.params.alias} not found`);
    const pl = roomPowerLevels(hs, existing.room_id);
    if (
      existing.creator !== a.userId &&
      userPower(pl, a.userId) < (pl.events["m.room.canonical_alias"] ?? pl.state_default)
    ) {
      throw forbidden("You don't have permission to delete the alias");
    }
    hs.rooms.deleteAlias(req.params.alias!);
    return { json: {} };
  });
  router.client("GET", "/rooms/:room/aliases", (req) => {
    const a = authed(req);
    if (hs.rooms.membership(req.params.room!, a.userId)?.membership !== "join") {
      throw forbidden("You are not in the room");
    }
    return { json: { aliases: hs.rooms.roomAliases(req.params.room!) } };
  });

  router.client(
    "GET",
    "/directory/list/room/:room",
    (req) => {
      const r = hs.rooms.getRoom(req.params.room!);
      if (!r) throw notFound("Unknown room");
      return { json: { visibility: r.is_public ? "public" : "private" } };
    },
    "optional",
  );
  router.client("PUT", "/directory/list/room/:room", (req) => {
    const a = authed(req);
    const body = jsonBody(req, z.object({ visibility: z.enum(["public", "private"]) }));
    if (!hs.rooms.getRoom(req.params.room!)) throw notFound("Unknown room");
    const pl = roomPowerLevels(hs, req.params.room!);
    if (userPower(pl, a.userId) < pl.state_default)
      throw forbidden("You don't have permission to publish the room");
    hs.rooms.setPublic(req.params.room!, body.visibility === "public");
    return { json: {} };
  });
  const publicRooms = (req: RouteRequest) => {
    // `limit` and `since` come in the query (GET) or the body (POST); `since` is an offset token.
    const body =
      req.method === "POST"
        ? jsonBody(req, z.looseObject({ limit: z.optional(z.number()), since: z.optional(z.string()) }))
        : {};
    const limitRaw =
      body.limit ?? (req.query.get("limit") === null ? undefined : Number(req.query.get("limit")));
    if (limitRaw !== undefined && (!Number.isInteger(limitRaw) || limitRaw < 1)) {
      throw new MatrixError(400, "M_INVALID_PARAM", "Invalid limit");
    }
    const limit = Math.min(limitRaw ?? MAX_PUBLIC_ROOMS_PAGE, MAX_PUBLIC_ROOMS_PAGE);
    const since = body.since ?? req.query.get("since") ?? undefined;
    const m = since === undefined ? undefined : /^p(\d{1,9})$/.exec(since);
    if (since !== undefined && !m) throw new MatrixError(400, "M_INVALID_PARAM", "Invalid since token");
    const offset = m ? Number(m[1]) : 0;
    const all = hs.rooms.publicRooms();
    const page = all.slice(offset, offset + limit);
    const chunk = page.map((roomId) => {
      const name = hs.rooms.stateEvent(roomId, "m.room.name", "")?.content.name;
      const topic = hs.rooms.stateEvent(roomId, "m.room.topic", "")?.content.topic;
      const alias = hs.rooms.stateEvent(roomId, "m.room.canonical_alias", "")?.content.alias;
      const joinRule = hs.rooms.stateEvent(roomId, "m.room.join_rules", "")?.content.join_rule;
      return {
        room_id: roomId,
        num_joined_members: hs.rooms.membersWith(roomId, "join").length,
        world_readable: false,
        guest_can_join: false,
        ...(typeof name === "string" ? { name } : {}),
        ...(typeof topic === "string" ? { topic } : {}),
        ...(typeof alias === "string" ? { canonical_alias: alias } : {}),
        ...(typeof joinRule === "string" ? { join_rule: joinRule } : {}),
      };
    });
    return {
      json: {
        chunk,
        total_room_count_estimate: all.length,
        ...(offset + limit < all.length ? { next_batch: `p${offset + limit}` } : {}),
        ...(offset > 0 ? { prev_batch: `p${Math.max(0, offset - limit)}` } : {}),
      },
    };
  };
  router.client("GET", "/publicRooms", publicRooms, "optional");
  router.client("POST", "/publicRooms", publicRooms);

  router.client("POST", "/user_directory/search", (req) => {
    const a = authed(req);
    const body = jsonBody(
      req,
      z.object({ search_term: z.string(), limit: z.optional(z.number().check(z.int(), z.positive())) }),
    );
    const term = body.search_term.toLowerCase();
    const limit = Math.min(body.limit ?? 10, 50);
    // Only users who share a room with the searcher, as Synapse does by default.
    const candidates = [...hs.rooms.usersSharingRoomWith(a.userId)];
    const results = candidates
      .map((u) => hs.accounts.getUser(u))
      .filter((u) => u !== undefined)
      .filter(
        (u) => u.user_id.toLowerCase().includes(term) || (u.displayname ?? "").toLowerCase().includes(term),
      )
      .map((u) => ({
        user_id: u.user_id,
        display_name: u.displayname ?? undefined,
        avatar_url: u.avatar_url ?? undefined,
      }));
    return { json: { results: results.slice(0, limit), limited: results.length > limit } };
  });
}
