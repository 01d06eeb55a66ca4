// Server-side key backup (room_keys): versions, keys per room and session, etag and count.
import * as z from "../../wire/zod.ts";
import { MatrixError, notFound } from "../errors.ts";
import type { Homeserver } from "../homeserver.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody, type RouteRequest } from "../router.ts";
import type { BackupKeyRow, BackupVersionRow } from "../storage/index.ts";
import { slot } from "../types.ts";

/** Largest `auth_data` of a backup version, and `session_data` of one backed-up key (413 M_TOO_LARGE past them). */
export const MAX_BACKUP_AUTH_DATA_BYTES = 64 * 1024;
export const MAX_BACKUP_SESSION_DATA_BYTES = 64 * 1024;
/** Most keys one backup version holds; an upload that would pass it is refused whole (403 M_FORBIDDEN). */
export const MAX_BACKUP_KEYS_PER_VERSION = 1_000_000;

/** `value` as JSON text, refused when longer than `limit` bytes. */
function boundedJson(value: unknown, limit: number, what: string): string {
  const text = JSON.stringify(value);
  if (Buffer.byteLength(text) > limit)
    throw new MatrixError(413, "M_TOO_LARGE", `${what} is larger than ${limit} bytes`);
  return text;
}

const keyData = z.object({
  first_message_index: z.number().check(z.int(), z.nonnegative()),
  forwarded_count: z.number().check(z.int(), z.nonnegative()),
  is_verified: z.boolean(),
  session_data: z.record(z.string(), z.unknown()),
});
type KeyData = z.infer<typeof keyData>;
const roomSessions = z.object({ sessions: z.record(z.string(), keyData) });
const allRooms = z.object({ rooms: z.record(z.string(), roomSessions) });
const versionBody = z.object({ algorithm: z.string(), auth_data: z.record(z.string(), z.unknown()) });

/** The spec's replacement rule: verified beats unverified, then lower first index, then fewer forwards. */
export function shouldReplace(existing: BackupKeyRow, next: KeyData): boolean {
  const oldVerified = existing.is_verified === 1;
  if (next.is_verified !== oldVerified) return next.is_verified;
  if (next.first_message_index !== existing.first_message_index) {
    return next.first_message_index < existing.first_message_index;
  }
  return next.forwarded_count < existing.forwarded_count;
}

function versionInfo(hs: Homeserver, v: BackupVersionRow) {
  return {
    algorithm: v.algorithm,
    auth_data: JSON.parse(v.auth_data) as unknown,
    count: hs.misc.countBackupKeys(v.user_id, v.version),
    etag: String(v.etag),
    version: String(v.version),
  };
}

const keyJson = (k: BackupKeyRow) => ({
  first_message_index: k.first_message_index,
  forwarded_count: k.forwarded_count,
  is_verified: k.is_verified === 1,
  session_data: JSON.parse(k.session_data) as unknown,
});

function parseVersion(raw: string | null | undefined): number | undefined {
  if (raw === null || raw === undefined || !/^\d{1,15}$/.test(raw)) return undefined;
  return Number(raw);
}

export function registerKeyBackupRoutes({ hs, router }: RouteContext): void {
  const existing = (userId: string, raw: string | undefined): BackupVersionRow => {
    const v = parseVersion(raw);
    const row = v === undefined ? undefined : hs.misc.getBackup(userId, v);
    if (!row) throw notFound("Unknown backup version");
    return row;
  };
  /** Uploads only go to the current version. */
  const currentForWrite = (req: RouteRequest, userId: string): BackupVersionRow => {
    const v = parseVersion(req.query.get("version"));
    if (v === undefined) throw new MatrixError(400, "M_MISSING_PARAM", "version is required");
    const latest = hs.misc.latestBackup(userId);
    if (!latest) throw notFound("No current backup version");
    if (latest.version !== v) {
      throw new MatrixError(403, "M_WRONG_ROOM_KEYS_VERSION", "Wrong backup version", {
        current_version: String(latest.version),
      });
    }
    return latest;
  };
  const forRead = (req: RouteRequest, userId: string): BackupVersionRow =>
    existing(userId, req.query.get("version") ?? "");

  router.client("POST", "/room_keys/version", (req) => {
    const a = authed(req);
    const body = jsonBody(req, versionBody);
    return {
      json: {
        version: String(
          hs.tx(() =>
            hs.misc.createBackup(
              a.userId,
              body.algorithm,
              boundedJson(body.auth_data, MAX_BACKUP_AUTH_DATA_BYTES, "auth_data"),
            ),
          ),
        ),
      },
    };
  });
  router.client("GET", "/room_keys/version", (req) => {
    const a = authed(req);
    const latest = hs.misc.latestBackup(a.userId);
    if (!latest) throw notFound("No current backup version");
    return { json: versionInfo(hs, latest) };
  });
  router.client("GET", "/room_keys/version/:v", (req) => {
    const a = authed(req);
    return { json: versionInfo(hs, existing(a.userId, req.params.v)) };
  });
  router.client("PUT", "/room_keys/version/:v", (req) => {
    const a = authed(req);
    const row = existing(a.userId, req.params.v);
    const body = jsonBody(req, z.extend(versionBody, { version: z.optional(z.string()) }));
    if (body.version !== undefined && body.version !== String(row.version)) {
      throw new MatrixError(400, "M_INVALID_PARAM", "version in body does not match the path");
    }
    if (body.algorithm !== row.algorithm)
      throw new MatrixError(400, "M_INVALID_PARAM", "Algorithm does not match");
    hs.misc.updateBackupAuthData(
      a.userId,
      row.version,
      boundedJson(body.auth_data, MAX_BACKUP_AUTH_DATA_BYTES, "auth_data"),
    );
    return { json: {} };
  });
  router.client("DELETE", "/room_keys/version/:v", (req) => {
    const a = authed(req);
    const row = existing(a.userId, req.params.v);
    hs.tx(() => hs.misc.deleteBackup(a.userId, row.version));
    return { json: {} };
  });

  const store = (userId: string, row: BackupVersionRow, rooms: Record<string, Record<string, KeyData>>) => {
    hs.tx(() => {
      let changed = false;
      for (const [roomId, sessions] of Object.entries(rooms)) {
        for (const [sessionId, k] of Object.entries(sessions)) {
          const old = hs.misc.getBackupKey(userId, row.version, roomId, sessionId);
          if (old && !shouldReplace(old, k)) continue;
          hs.misc.putBackupKey(userId, row.version, {
            room_id: roomId,
            session_id: sessionId,
            first_message_index: k.first_message_index,
            forwarded_count: k.forwarded_count,
            is_verified: k.is_verified ? 1 : 0,
            session_data: boundedJson(k.session_data, MAX_BACKUP_SESSION_DATA_BYTES, "session_data"),
          });
          changed = true;
        }
      }
      // Checked after writing (the transaction undoes it all): replaced keys do not count twice.
      if (changed && hs.misc.countBackupKeys(userId, row.version) > MAX_BACKUP_KEYS_PER_VERSION) {
        throw new MatrixError(
          403,
          "M_FORBIDDEN",
          `A backup version holds at most ${MAX_BACKUP_KEYS_PER_VERSION} keys`,
        );
      }
      if (changed) hs.misc.bumpBackupEtag(userId, row.version);
    });
    const after = hs.misc.getBackup(userId, row.version)!;
    return { json: { etag: String(after.etag), count: hs.misc.countBackupKeys(userId, row.version) } };
  };

  router.client("PUT", "/room_keys/keys", (req) => {
    const a = authed(req);
    const row = currentForWrite(req, a.userId);
    const body = jsonBody(req, allRooms);
    return store(
      a.userId,
      row,
      Object.fromEntries(Object.entries(body.rooms).map(([r, s]) => [r, s.sessions])),
    );
  });
  router.client("PUT", "/room_keys/keys/:room", (req) => {
    const a = authed(req);
    const row = currentForWrite(req, a.userId);
    return store(a.userId, row, { [req.params.room!]: jsonBody(req, roomSessions).sessions });
  });
  router.client("PUT", "/room_keys/keys/:room/:session", (req) => {
    const a = authed(req);
    const row = currentForWrite(req, a.userId);
    return store(a.userId, row, { [req.params.room!]: { [req.params.session!]: jsonBody(req, keyData) } });
  });

  router.client("GET", "/room_keys/keys", (req) => {
    const a = authed(req);
    const row = forRead(req, a.userId);
    const rooms: Record<string, { sessions: Record<string, unknown> }> = {};
    for (const k of hs.misc.backupKeys(a.userId, row.version)) {
      slot(rooms, k.room_id, () => ({ sessions: {} })).sessions[k.session_id] = keyJson(k);
    }
    return { json: { rooms } };
  });
  router.client("GET", "/room_keys/keys/:room", (req) => {
    const a = authed(req);
    const row = forRead(req, a.userId);
    const sessions: Record<string, unknown> = {};
    for (const k of hs.misc.backupKeys(a.userId, row.version, req.params.room!))
      sessions[k.session_id] = keyJson(k);
    return { json: { sessions } };
  });
  router.client("GET", "/room_keys/keys/:room/:session", (req) => {
    const a = authed(req);
    const row = forRead(req, a.userId);
    const k = hs.misc.getBackupKey(a.userId, row.version, req.params.room!, req.params.session!);
    if (!k) throw notFound("No room_keys found");
    return { json: keyJson(k) };
  });

  const del = (req: RouteRequest, roomId?: string, sessionId?: string) => {
    const a = authed(req);
    const row = forRead(req, a.userId);
    hs.tx(() => {
      hs.misc.deleteBackupKeys(a.userId, row.version, roomId, sessionId);
      hs.misc.bumpBackupEtag(a.userId, row.version);
    });
    const after = hs.misc.getBackup(a.userId, row.version)!;
    return { json: { etag: String(after.etag), count: hs.misc.countBackupKeys(a.userId, row.version) } };
  };
  router.client("DELETE", "/room_keys/keys", (req) => del(req));
  router.client("DELETE", "/room_keys/keys/:room", (req) => del(req, req.params.room!));
  router.client("DELETE", "/room_keys/keys/:room/:session", (req) =>
    del(req, req.params.room!, req.params.session!),
  );
}
