// Account data, receipts, media and key backup.
import type { Db } from "./db.ts";

export interface ReceiptRow {
  room_id: string;
  user_id: string;
  receipt_type: string;
  thread_id: string;
  event_id: string;
  ts: number;
  stream_id: number;
}

/** Unread messages counted per room for a sync's `unread_notifications`, at most. */
export const MAX_UNREAD_COUNT = 1_000;

export interface MediaRow {
  media_id: string;
  uploader: string;
  content_type: string;
  filename: string | null;
  bytes: Buffer;
}

/** Most key backup versions kept per user, deleted ones included; creating one more drops the oldest with its keys. */
export const MAX_BACKUP_VERSIONS_PER_USER = 100;

export interface BackupVersionRow {
  user_id: string;
  version: number;
  algorithm: string;
  auth_data: string;
  etag: number;
  deleted: number;
}

export interface BackupKeyRow {
  room_id: string;
  session_id: string;
  first_message_index: number;
  forwarded_count: number;
  is_verified: number;
  session_data: string;
}

export class MiscStore {
  private readonly s;
  constructor(db: Db) {
    this.s = {
      putAccountData: db.prepare(
        `INSERT INTO account_data (user_id, room_id, type, content, stream_id) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, stream_id = excluded.stream_id`,
      ),
      accountDataBytes: db.prepare(
        `SELECT COALESCE(SUM(length(CAST(content AS BLOB))), 0) AS n FROM account_data
         WHERE user_id = ? AND NOT (room_id = ? AND type = ?)`,
      ),
      getAccountData: db.prepare(
        "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND type = ?",
      ),
      accountDataSince: db.prepare(
        "SELECT room_id, type, content FROM account_data WHERE user_id = ? AND stream_id > ? AND stream_id <= ?",
      ),
      putReceipt: db.prepare(
        `INSERT INTO receipts (room_id, user_id, receipt_type, thread_id, event_id, ts, stream_id)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (room_id, user_id, receipt_type, thread_id) DO UPDATE SET event_id = excluded.event_id,
           ts = excluded.ts, stream_id = excluded.stream_id`,
      ),
      receiptsSince: db.prepare(
        "SELECT * FROM receipts WHERE room_id = ? AND stream_id > ? AND stream_id <= ?",
      ),
      // Messages from others after the user's main-timeline read receipt (or, without one, after
      // `@since`, their membership), as the default push rules notify for them.
      unreadMessages: db.prepare(
        `SELECT COUNT(*) AS n FROM (
           SELECT 1 FROM events
           WHERE room_id = @room AND sender != @user AND stream_ordering <= @now AND state_key IS NULL
             AND type IN ('m.room.message', 'm.room.encrypted')
             AND stream_ordering > MAX(@since, COALESCE((
               SELECT MAX(e.stream_ordering) FROM receipts r JOIN events e ON e.event_id = r.event_id
               WHERE r.room_id = @room AND r.user_id = @user AND r.receipt_type IN ('m.read', 'm.read.private')
                 AND r.thread_id IN ('', 'main')), 0))
           LIMIT @limit)`,
      ),
      putMedia: db.prepare(
        "INSERT INTO media (media_id, uploader, content_type, filename, bytes, created_ts) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      mediaBytes: db.prepare("SELECT COALESCE(SUM(length(bytes)), 0) AS n FROM media WHERE uploader = ?"),
      getMedia: db.prepare(
        "SELECT media_id, uploader, content_type, filename, bytes FROM media WHERE media_id = ?",
      ),
      reserveMedia: db.prepare("INSERT INTO pending_media (media_id, uploader, expires_ts) VALUES (?, ?, ?)"),
      getPending: db.prepare("SELECT uploader, expires_ts FROM pending_media WHERE media_id = ?"),
      deletePending: db.prepare("DELETE FROM pending_media WHERE media_id = ?"),
      countPending: db.prepare(
        "SELECT COUNT(*) AS n FROM pending_media WHERE uploader = ? AND expires_ts > ?",
      ),
      maxBackup: db.prepare("SELECT MAX(version) AS m FROM backup_versions WHERE user_id = ?"),
      insertBackup: db.prepare(
        "INSERT INTO backup_versions (user_id, version, algorithm, auth_data, etag) VALUES (?, ?, ?, ?, 0)",
      ),
      oldBackupKeys: db.prepare("DELETE FROM backup_keys WHERE user_id = ? AND version <= ?"),
      oldBackups: db.prepare("DELETE FROM backup_versions WHERE user_id = ? AND version <= ?"),
      getBackup: db.prepare(
        "SELECT * FROM backup_versions WHERE user_id = ? AND version = ? AND deleted = 0",
      ),
      latestBackup: db.prepare(
        "SELECT * FROM backup_versions WHERE user_id = ? AND deleted = 0 ORDER BY version DESC LIMIT 1",
      ),
      updateBackup: db.prepare("UPDATE backup_versions SET auth_data = ? WHERE user_id = ? AND version = ?"),
      deleteBackup: db.prepare("UPDATE backup_versions SET deleted = 1 WHERE user_id = ? AND version = ?"),
      bumpEtag: db.prepare("UPDATE backup_versions SET etag = etag + 1 WHERE user_id = ? AND version = ?"),
      getBackupKey: db.prepare(
        "SELECT * FROM backup_keys WHERE user_id = ? AND version = ? AND room_id = ? AND session_id = ?",
      ),
      putBackupKey: db.prepare(
        `INSERT OR REPLACE INTO backup_keys (user_id, version, room_id, session_id, first_message_index,
           forwarded_count, is_verified, session_data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      backupKeys: db.prepare("SELECT * FROM backup_keys WHERE user_id = ? AND version = ?"),
      backupKeysRoom: db.prepare(
        "SELECT * FROM backup_keys WHERE user_id = ? AND version = ? AND room_id = ?",
      ),
      countBackupKeys: db.prepare("SELECT COUNT(*) AS n FROM backup_keys WHERE user_id = ? AND version = ?"),
      deleteBackupKeys: db.prepare("DELETE FROM backup_keys WHERE user_id = ? AND version = ?"),
      deleteBackupKeysRoom: db.prepare(
        "DELETE FROM backup_keys WHERE user_id = ? AND version = ? AND room_id = ?",
      ),
      deleteBackupKey: db.prepare(
        "DELETE FROM backup_keys WHERE user_id = ? AND version = ? AND room_id = ? AND session_id = ?",
      ),
    };
  }

  putAccountData(user: string, roomId: string, type: string, content: string, pos: number): void {
    this.s.putAccountData.run(user, roomId, type, content, pos);
  }
  /** Bytes of the user's account data (global, per room, tags), leaving out the entry `roomId`/`type`. */
  accountDataBytesBesides(user: string, roomId: string, type: string): number {
    return (this.s.accountDataBytes.get(user, roomId, type) as { n: number }).n;
  }
  getAccountData(user: string, roomId: string, type: string): string | undefined {
    return (this.s.getAccountData.get(user, roomId, type) as { content: string } | undefined)?.content;
  }
  accountDataBetween(
    user: string,
    from: number,
    to: number,
  ): { room_id: string; type: string; content: string }[] {
    return this.s.accountDataSince.all(user, from, to) as {
      room_id: string;
      type: string;
      content: string;
    }[];
  }
  putReceipt(r: ReceiptRow): void {
    this.s.putReceipt.run(r.room_id, r.user_id, r.receipt_type, r.thread_id, r.event_id, r.ts, r.stream_id);
  }
  receiptsBetween(roomId: string, from: number, to: number): ReceiptRow[] {
    return this.s.receiptsSince.all(roomId, from, to) as ReceiptRow[];
  }
  /**
   * `userId`'s unread messages in `roomId` at position `now` (up to `MAX_UNREAD_COUNT`): the
   * `m.room.message` and `m.room.encrypted` events of others after their read receipt (`m.read` or
   * `m.read.private`, unthreaded or `main`), else after position `since` (their membership).
   */
  unreadMessages(roomId: string, userId: string, since: number, now: number): number {
    return (
      this.s.unreadMessages.get({ room: roomId, user: userId, now, since, limit: MAX_UNREAD_COUNT }) as {
        n: number;
      }
    ).n;
  }
  putMedia(m: MediaRow): void {
    this.s.putMedia.run(m.media_id, m.uploader, m.content_type, m.filename, m.bytes, Date.now());
  }
  getMedia(mediaId: string): MediaRow | undefined {
    return this.s.getMedia.get(mediaId) as MediaRow | undefined;
  }

  reserveMedia(mediaId: string, uploader: string, expiresTs: number): void {
    this.s.reserveMedia.run(mediaId, uploader, expiresTs);
  }
  pendingMedia(mediaId: string): { uploader: string; expires_ts: number } | undefined {
    return this.s.getPending.get(mediaId) as { uploader: string; expires_ts: number } | undefined;
  }
  deletePendingMedia(mediaId: string): void {
    this.s.deletePending.run(mediaId);
  }
  /** Bytes of media `uploader` stored. */
  mediaBytesOf(uploader: string): number {
    return (this.s.mediaBytes.get(uploader) as { n: number }).n;
  }
  countPendingMedia(uploader: string, now: number): number {
    return (this.s.countPending.get(uploader, now) as { n: number }).n;
  }

  createBackup(user: string, algorithm: string, authData: string): number {
    const row = this.s.maxBackup.get(user) as { m: number | null };
    const version = (row.m ?? 0) + 1;
    this.s.insertBackup.run(user, version, algorithm, authData);
    // Versions are numbered 1, 2, …: those more than the bound below the new one go.
    this.s.oldBackupKeys.run(user, version - MAX_BACKUP_VERSIONS_PER_USER);
    this.s.oldBackups.run(user, version - MAX_BACKUP_VERSIONS_PER_USER);
    return version;
  }
  getBackup(user: string, version: number): BackupVersionRow | undefined {
    return this.s.getBackup.get(user, version) as BackupVersionRow | undefined;
  }
  latestBackup(user: string): BackupVersionRow | undefined {
    return this.s.latestBackup.get(user) as BackupVersionRow | undefined;
  }
  updateBackupAuthData(user: string, version: number, authData: string): void {
    this.s.updateBackup.run(authData, user, version);
  }
  deleteBackup(user: string, version: number): void {
    this.s.deleteBackup.run(user, version);
    this.s.deleteBackupKeys.run(user, version);
  }
  bumpBackupEtag(user: string, version: number): void {
    this.s.bumpEtag.run(user, version);
  }
  getBackupKey(user: string, version: number, roomId: string, sessionId: string): BackupKeyRow | undefined {
    return this.s.getBackupKey.get(user, version, roomId, sessionId) as BackupKeyRow | undefined;
  }
  putBackupKey(user: string, version: number, k: BackupKeyRow): void {
    this.s.putBackupKey.run(
      user,
      version,
      k.room_id,
      k.session_id,
      k.first_message_index,
      k.forwarded_count,
      k.is_verified,
      k.session_data,
    );
  }
  backupKeys(user: string, version: number, roomId?: string): BackupKeyRow[] {
    return (
      roomId === undefined
        ? this.s.backupKeys.all(user, version)
        : this.s.backupKeysRoom.all(user, version, roomId)
    ) as BackupKeyRow[];
  }
  countBackupKeys(user: string, version: number): number {
    return (this.s.countBackupKeys.get(user, version) as { n: number }).n;
  }
  deleteBackupKeys(user: string, version: number, roomId?: string, sessionId?: string): void {
    if (roomId === undefined) this.s.deleteBackupKeys.run(user, version);
    else if (sessionId === undefined) this.s.deleteBackupKeysRoom.run(user, version, roomId);
    else this.s.deleteBackupKey.run(user, version, roomId, sessionId);
  }
}
