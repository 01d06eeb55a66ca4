// Users, devices, access tokens, transaction IDs and filters.
import { createHash } from "node:crypto";
import type { Db } from "./db.ts";

export interface DeviceRow {
  user_id: string;
  device_id: string;
  display_name: string | null;
  last_seen_ts: number | null;
  last_seen_ip: string | null;
  device_keys: string | null;
}

export interface UserRow {
  user_id: string;
  password_hash: string | null;
  displayname: string | null;
  avatar_url: string | null;
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("base64");
}

/**
 * Most access tokens (and refresh tokens) one device keeps: logging in again with its ID, or
 * refreshing, adds one; past the bound the oldest goes.
 */
export const MAX_ACCESS_TOKENS_PER_DEVICE = 100;
/**
 * Most transaction IDs remembered per device (idempotent `PUT`s: a retry within the last ones is
 * answered as the first was); past it the oldest is forgotten.
 */
export const MAX_TXNS_PER_DEVICE = 1000;
/** Most filters one user keeps (uploading one identical to a kept one returns its ID); the oldest go first. */
export const MAX_FILTERS_PER_USER = 100;

export class AccountStore {
  private readonly s;
  constructor(db: Db) {
    this.s = {
      insertUser: db.prepare(
        "INSERT OR IGNORE INTO users (user_id, password_hash, displayname, created_ts) VALUES (?, ?, ?, ?)",
      ),
      getUser: db.prepare("SELECT * FROM users WHERE user_id = ?"),
      userIds: db.prepare("SELECT user_id FROM users ORDER BY user_id"),
      setDisplayname: db.prepare("UPDATE users SET displayname = ? WHERE user_id = ?"),
      setAvatar: db.prepare("UPDATE users SET avatar_url = ? WHERE user_id = ?"),
      upsertDevice: db.prepare(
        `INSERT INTO devices (user_id, device_id, display_name, last_seen_ts, last_seen_ip)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (user_id, device_id) DO UPDATE SET
           display_name = COALESCE(excluded.display_name, devices.display_name),
           last_seen_ts = excluded.last_seen_ts, last_seen_ip = excluded.last_seen_ip`,
      ),
      getDevice: db.prepare("SELECT * FROM devices WHERE user_id = ? AND device_id = ?"),
      listDevices: db.prepare("SELECT * FROM devices WHERE user_id = ? ORDER BY device_id"),
      setDeviceName: db.prepare("UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?"),
      setDeviceKeys: db.prepare("UPDATE devices SET device_keys = ? WHERE user_id = ? AND device_id = ?"),
      deleteDevice: db.prepare("DELETE FROM devices WHERE user_id = ? AND device_id = ?"),
      insertToken: db.prepare(
        `INSERT INTO access_tokens (token_hash, user_id, device_id, expires_ts, parent_refresh_hash)
         VALUES (?, ?, ?, ?, ?)`,
      ),
      getToken: db.prepare(
        "SELECT user_id, device_id, expires_ts, parent_refresh_hash FROM access_tokens WHERE token_hash = ?",
      ),
      clearTokenParent: db.prepare(
        "UPDATE access_tokens SET parent_refresh_hash = NULL WHERE token_hash = ?",
      ),
      insertRefresh: db.prepare(
        "INSERT INTO refresh_tokens (token_hash, user_id, device_id, parent_hash) VALUES (?, ?, ?, ?)",
      ),
      getRefresh: db.prepare(
        "SELECT user_id, device_id, parent_hash FROM refresh_tokens WHERE token_hash = ?",
      ),
      deleteRefresh: db.prepare("DELETE FROM refresh_tokens WHERE token_hash = ?"),
      clearRefreshParent: db.prepare("UPDATE refresh_tokens SET parent_hash = NULL WHERE token_hash = ?"),
      deleteRefreshChildren: db.prepare("DELETE FROM refresh_tokens WHERE parent_hash = ?"),
      deleteTokenChildren: db.prepare("DELETE FROM access_tokens WHERE parent_refresh_hash = ?"),
      deleteDeviceRefresh: db.prepare("DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?"),
      deleteToken: db.prepare("DELETE FROM access_tokens WHERE token_hash = ?"),
      deleteDeviceTokens: db.prepare("DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?"),
      getTxn: db.prepare(
        "SELECT result FROM txns WHERE user_id = ? AND device_id = ? AND kind = ? AND txn_id = ?",
      ),
      putTxn: db.prepare(
        "INSERT OR REPLACE INTO txns (user_id, device_id, kind, txn_id, result) VALUES (?, ?, ?, ?, ?)",
      ),
      pruneTxns: db.prepare(
        `DELETE FROM txns WHERE user_id = ? AND device_id = ? AND rowid <= (SELECT rowid FROM txns
           WHERE user_id = ? AND device_id = ? ORDER BY rowid DESC LIMIT 1 OFFSET ?)`,
      ),
      pruneTokens: db.prepare(
        `DELETE FROM access_tokens WHERE user_id = ? AND device_id = ? AND rowid <= (SELECT rowid FROM
           access_tokens WHERE user_id = ? AND device_id = ? ORDER BY rowid DESC LIMIT 1 OFFSET ?)`,
      ),
      pruneRefresh: db.prepare(
        `DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ? AND rowid <= (SELECT rowid FROM
           refresh_tokens WHERE user_id = ? AND device_id = ? ORDER BY rowid DESC LIMIT 1 OFFSET ?)`,
      ),
      countDevices: db.prepare("SELECT COUNT(*) AS n FROM devices WHERE user_id = ?"),
      findFilter: db.prepare("SELECT filter_id FROM filters WHERE user_id = ? AND json = ?"),
      pruneFilters: db.prepare("DELETE FROM filters WHERE user_id = ? AND filter_id <= ?"),
      deleteDeviceTxns: db.prepare("DELETE FROM txns WHERE user_id = ? AND device_id = ?"),
      maxFilter: db.prepare("SELECT MAX(filter_id) AS m FROM filters WHERE user_id = ?"),
      putFilter: db.prepare("INSERT INTO filters (user_id, filter_id, json) VALUES (?, ?, ?)"),
      getFilter: db.prepare("SELECT json FROM filters WHERE user_id = ? AND filter_id = ?"),
    };
  }

  createUser(userId: string, passwordHash: string | null, displayname: string): boolean {
    return this.s.insertUser.run(userId, passwordHash, displayname, Date.now()).changes === 1;
  }
  getUser(userId: string): UserRow | undefined {
    return this.s.getUser.get(userId) as UserRow | undefined;
  }
  /** Every user ID (appservices pick theirs from it by namespace). */
  userIds(): string[] {
    return (this.s.userIds.all() as { user_id: string }[]).map((r) => r.user_id);
  }
  setDisplayname(userId: string, name: string | null): void {
    this.s.setDisplayname.run(name, userId);
  }
  setAvatarUrl(userId: string, url: string | null): void {
    this.s.setAvatar.run(url, userId);
  }

  upsertDevice(userId: string, deviceId: string, displayName: string | null, ip: string | null): void {
    this.s.upsertDevice.run(userId, deviceId, displayName, Date.now(), ip);
  }
  getDevice(userId: string, deviceId: string): DeviceRow | undefined {
    return this.s.getDevice.get(userId, deviceId) as DeviceRow | undefined;
  }
  countDevices(userId: string): number {
    return (this.s.countDevices.get(userId) as { n: number }).n;
  }
  listDevices(userId: string): DeviceRow[] {
    return this.s.listDevices.all(userId) as DeviceRow[];
  }
  setDeviceName(userId: string, deviceId: string, name: string | null): void {
    this.s.setDeviceName.run(name, userId, deviceId);
  }
  setDeviceKeys(userId: string, deviceId: string, keysJson: string): void {
    this.s.setDeviceKeys.run(keysJson, userId, deviceId);
  }
  /** Removes the device and everything hanging off it (tokens, transaction IDs). */
  deleteDevice(userId: string, deviceId: string): void {
    this.s.deleteDevice.run(userId, deviceId);
    this.s.deleteDeviceTokens.run(userId, deviceId);
    this.s.deleteDeviceRefresh.run(userId, deviceId);
    this.s.deleteDeviceTxns.run(userId, deviceId);
  }

  /**
   * Stores an access token; `expiresTs` (ms since the epoch) only for tokens that come with a
   * refresh token, `parentRefresh` only for one a refresh made (the refresh token traded for it).
   */
  addToken(
    token: string,
    userId: string,
    deviceId: string,
    expiresTs: number | null = null,
    parentRefresh: string | null = null,
  ): void {
    this.s.insertToken.run(
      hashToken(token),
      userId,
      deviceId,
      expiresTs,
      parentRefresh === null ? null : hashToken(parentRefresh),
    );
  }
  /** Deletes the device's oldest access tokens beyond MAX_ACCESS_TOKENS_PER_DEVICE; true if any went. */
  pruneTokens(userId: string, deviceId: string): boolean {
    return (
      this.s.pruneTokens.run(userId, deviceId, userId, deviceId, MAX_ACCESS_TOKENS_PER_DEVICE).changes > 0
    );
  }
  /**
   * The access token's owner and expiry. The first lookup of one a refresh made revokes the
   * refresh token traded for it (spec: the old refresh token stays good until a new token is used).
   */
  lookupToken(token: string): { user_id: string; device_id: string; expires_ts: number | null } | undefined {
    const hash = hashToken(token);
    const row = this.s.getToken.get(hash) as
      | { user_id: string; device_id: string; expires_ts: number | null; parent_refresh_hash: string | null }
      | undefined;
    if (row === undefined) return undefined;
    if (row.parent_refresh_hash !== null) {
      this.s.deleteRefresh.run(row.parent_refresh_hash);
      this.s.clearTokenParent.run(hash);
    }
    return { user_id: row.user_id, device_id: row.device_id, expires_ts: row.expires_ts };
  }
  deleteToken(token: string): void {
    this.s.deleteToken.run(hashToken(token));
  }
  /** Stores a refresh token; `parent`: the refresh token traded for it, if a refresh made it. */
  addRefreshToken(token: string, userId: string, deviceId: string, parent: string | null = null): void {
    this.s.insertRefresh.run(hashToken(token), userId, deviceId, parent === null ? null : hashToken(parent));
    this.s.pruneRefresh.run(userId, deviceId, userId, deviceId, MAX_ACCESS_TOKENS_PER_DEVICE);
  }
  /**
   * Spends a refresh token, saying whose it was (undefined: unknown or revoked). Its first use
   * revokes its parent; the tokens an earlier use of it made (never used, or it would be revoked)
   * are revoked, as Synapse does: only the newest answer to a repeated refresh stays good.
   */
  useRefreshToken(token: string): { user_id: string; device_id: string } | undefined {
    const hash = hashToken(token);
    const row = this.s.getRefresh.get(hash) as
      | { user_id: string; device_id: string; parent_hash: string | null }
      | undefined;
    if (row === undefined) return undefined;
    if (row.parent_hash !== null) {
      this.s.deleteRefresh.run(row.parent_hash);
      this.s.clearRefreshParent.run(hash);
    }
    this.s.deleteRefreshChildren.run(hash);
    this.s.deleteTokenChildren.run(hash);
    return { user_id: row.user_id, device_id: row.device_id };
  }

  getTxn(userId: string, deviceId: string, kind: string, txnId: string): string | undefined {
    const row = this.s.getTxn.get(userId, deviceId, kind, txnId) as { result: string } | undefined;
    return row?.result;
  }
  putTxn(userId: string, deviceId: string, kind: string, txnId: string, result: string): void {
    this.s.putTxn.run(userId, deviceId, kind, txnId, result);
    this.s.pruneTxns.run(userId, deviceId, userId, deviceId, MAX_TXNS_PER_DEVICE);
  }

  addFilter(userId: string, json: string): number {
    const same = this.s.findFilter.get(userId, json) as { filter_id: number } | undefined;
    if (same) return same.filter_id;
    const row = this.s.maxFilter.get(userId) as { m: number | null };
    const id = (row.m ?? -1) + 1;
    this.s.putFilter.run(userId, id, json);
    this.s.pruneFilters.run(userId, id - MAX_FILTERS_PER_USER);
    return id;
  }
  getFilter(userId: string, filterId: number): string | undefined {
    return (this.s.getFilter.get(userId, filterId) as { json: string } | undefined)?.json;
  }
}
