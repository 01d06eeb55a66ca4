// Profiles (display name, avatar URL; a change is applied to the room memberships too) and presence.
import * as z from "../../wire/zod.ts";
import { forbidden, notFound } from "../errors.ts";
import type { Homeserver } from "../homeserver.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody } from "../router.ts";

/** Longest display name accepted (Synapse's limit). */
export const MAX_DISPLAYNAME_LENGTH = 256;
/**
 * Longest avatar URL accepted (Synapse's limit). It is copied into the user's membership event in
 * every joined room, so without a bound one request wrote megabytes into each.
 */
export const MAX_AVATAR_URL_LENGTH = 1000;

function propagate(hs: Homeserver, userId: string): void {
  const u = hs.accounts.getUser(userId);
  for (const m of hs.rooms.roomsForUser(userId)) {
    if (m.membership !== "join") continue;
    const content: Record<string, unknown> = { membership: "join" };
    if (u?.displayname) content.displayname = u.displayname;
    if (u?.avatar_url) content.avatar_url = u.avatar_url;
    hs.appendEvent(m.room_id, userId, "m.room.member", content, { stateKey: userId });
  }
}

/** Longest presence status message accepted. */
export const MAX_STATUS_MSG_LENGTH = 1024;

const presenceSchema = z.object({
  presence: z.enum(["online", "offline", "unavailable"]),
  status_msg: z.optional(z.string().check(z.maxLength(MAX_STATUS_MSG_LENGTH))),
});

export function registerProfileRoutes({ hs, router }: RouteContext): void {
  // Presence is ephemeral here (memory only) and not pushed through sync: clients that ask get the
  // last state a user set, and "offline" otherwise.
  const presence = new Map<string, { presence: string; status_msg?: string; ts: number }>();
  router.client("PUT", "/presence/:user/status", (req) => {
    const a = authed(req);
    if (req.params.user !== a.userId) throw forbidden("Cannot set another user's presence");
    const body = jsonBody(req, presenceSchema);
    presence.set(a.userId, {
      presence: body.presence,
      ...(body.status_msg !== undefined ? { status_msg: body.status_msg } : {}),
      ts: Date.now(),
    });
    return { json: {} };
  });
  router.client("GET", "/presence/:user/status", (req) => {
    authed(req);
    if (!hs.accounts.getUser(req.params.user!)) throw notFound("Unknown user");
    const p = presence.get(req.params.user!);
    if (!p) return { json: { presence: "offline" } };
    return {
      json: {
        presence: p.presence,
        last_active_ago: Date.now() - p.ts,
        currently_active: p.presence === "online",
        ...(p.status_msg !== undefined ? { status_msg: p.status_msg } : {}),
      },
    };
  });

  const user = (userId: string) => {
    const u = hs.accounts.getUser(userId);
    if (!u) throw notFound("Profile was not found");
    return u;
  };
  router.client(
    "GET",
    "/profile/:user",
    (req) => {
      const u = user(req.params.user!);
      const json: Record<string, string> = {};
      if (u.displayname !== null) json.displayname = u.displayname;
      if (u.avatar_url !== null) json.avatar_url = u.avatar_url;
      return { json };
    },
    "optional",
  );
  for (const field of ["displayname", "avatar_url"] as const) {
    router.client(
      "GET",
      `/profile/:user/${field}`,
      (req) => {
        const v = user(req.params.user!)[field];
        if (v === null) throw notFound(`${field} not set`);
        return { json: { [field]: v } };
      },
      "optional",
    );
    router.client("PUT", `/profile/:user/${field}`, (req) => {
      const a = authed(req);
      if (req.params.user !== a.userId) throw forbidden("Cannot set another user's profile");
      const schema =
        field === "displayname"
          ? z.object({
              displayname: z.optional(z.nullable(z.string().check(z.maxLength(MAX_DISPLAYNAME_LENGTH)))),
            })
          : z.object({
              avatar_url: z.optional(
                z.nullable(z.string().check(z.startsWith("mxc://"), z.maxLength(MAX_AVATAR_URL_LENGTH))),
              ),
            });
      const body = jsonBody(req, schema) as Record<string, string | null | undefined>;
      const value = body[field] ?? null;
      if (field === "displayname") hs.accounts.setDisplayname(a.userId, value);
      else hs.accounts.setAvatarUrl(a.userId, value);
      propagate(hs, a.userId);
      return { json: {} };
    });
  }
}
