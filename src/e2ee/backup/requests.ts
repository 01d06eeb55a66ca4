/**
 * The key backup's requests. Not part of the `OutgoingRequest` union: the client sends them from
 * its backup driver (they depend on the user's choices and on `m.key_backup`), and hands each
 * answer back to `OlmMachine.backup`.
 */
import type { KeyBackupData } from "../../crypto/backup/index.ts";

/** `POST /_matrix/client/v3/room_keys/version`: a new version (answer: `{ version }`). */
export interface BackupCreateVersionRequest {
  readonly id: string;
  readonly type: "backup_create_version";
  readonly body: { readonly algorithm: string; readonly auth_data: Readonly<Record<string, unknown>> };
}

/** `PUT /_matrix/client/v3/room_keys/keys?version=V`: one batch of sessions. */
export interface BackupUploadRequest {
  readonly id: string;
  readonly type: "backup_upload";
  readonly version: string;
  readonly body: { readonly rooms: Record<string, { sessions: Record<string, KeyBackupData> }> };
}

/** `GET /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}?version=V`: one session, on demand. */
export interface BackupLookupRequest {
  readonly id: string;
  readonly type: "backup_lookup";
  readonly version: string;
  readonly roomId: string;
  readonly sessionId: string;
}
