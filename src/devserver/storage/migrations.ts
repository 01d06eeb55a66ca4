// Numbered schema migrations. `user_version` records how many have run; each runs in a transaction.
// Append new migrations; never edit one that has shipped.

export const MIGRATIONS: readonly string[] = [
  // 1: the whole initial schema.
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

  CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    password_hash TEXT,
    displayname TEXT,
    avatar_url TEXT,
    created_ts INTEGER NOT NULL
  );

  CREATE TABLE devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    display_name TEXT,
    last_seen_ts INTEGER,
    last_seen_ip TEXT,
    device_keys TEXT,
    PRIMARY KEY (user_id, device_id)
  );

  -- Tokens are stored as SHA-256 hashes: a leaked database does not leak sessions.
  CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL
  );
  CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);

  CREATE TABLE txns (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, kind, txn_id)
  );

  CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator TEXT NOT NULL,
    is_public INTEGER NOT NULL DEFAULT 0
  );

  CREATE TABLE events (
    stream_ordering INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT,
    sender TEXT NOT NULL,
    json TEXT NOT NULL,
    txn_device TEXT,
    txn_id TEXT
  );
  CREATE INDEX events_room ON events (room_id, stream_ordering);
  CREATE INDEX events_room_state ON events (room_id, type, state_key, stream_ordering)
    WHERE state_key IS NOT NULL;

  CREATE TABLE current_state (
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    stream_ordering INTEGER NOT NULL,
    PRIMARY KEY (room_id, type, state_key)
  );

  CREATE TABLE memberships (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    stream_ordering INTEGER NOT NULL,
    forgotten INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
  );
  CREATE INDEX memberships_user ON memberships (user_id, membership);

  CREATE TABLE room_aliases (alias TEXT PRIMARY KEY, room_id TEXT NOT NULL, creator TEXT NOT NULL);

  CREATE TABLE one_time_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
  );

  CREATE TABLE fallback_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id, algorithm)
  );

  CREATE TABLE cross_signing_keys (
    user_id TEXT NOT NULL,
    key_type TEXT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (user_id, key_type)
  );

  -- Signatures uploaded through keys/signatures/upload, kept apart from the signed objects so that
  -- signatures by another user are shown only to that user.
  CREATE TABLE key_signatures (
    signer_user_id TEXT NOT NULL,
    signer_key_id TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    target_key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (signer_user_id, signer_key_id, target_user_id, target_key_id)
  );

  CREATE TABLE device_list_changes (stream_id INTEGER PRIMARY KEY, user_id TEXT NOT NULL);

  CREATE TABLE to_device (
    stream_id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    json TEXT NOT NULL
  );
  CREATE INDEX to_device_target ON to_device (user_id, device_id, stream_id);

  CREATE TABLE account_data (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
  );

  CREATE TABLE receipts (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    stream_id INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id, receipt_type, thread_id)
  );

  CREATE TABLE filters (
    user_id TEXT NOT NULL,
    filter_id INTEGER NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
  );

  CREATE TABLE media (
    media_id TEXT PRIMARY KEY,
    uploader TEXT NOT NULL,
    content_type TEXT NOT NULL,
    filename TEXT,
    bytes BLOB NOT NULL,
    created_ts INTEGER NOT NULL
  );

  CREATE TABLE backup_versions (
    user_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    algorithm TEXT NOT NULL,
    auth_data TEXT NOT NULL,
    etag INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, version)
  );

  CREATE TABLE backup_keys (
    user_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    room_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    first_message_index INTEGER NOT NULL,
    forwarded_count INTEGER NOT NULL,
    is_verified INTEGER NOT NULL,
    session_data TEXT NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id)
  );

  INSERT INTO meta (key, value) VALUES ('stream', '0');
  `,
  // 2: refresh tokens; access tokens issued alongside one expire.
  `
  ALTER TABLE access_tokens ADD COLUMN expires_ts INTEGER;
  CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL
  );
  CREATE INDEX refresh_tokens_device ON refresh_tokens (user_id, device_id);
  `,
  // 3: media IDs reserved by /media/v1/create, waiting for their upload.
  `
  CREATE TABLE pending_media (
    media_id TEXT PRIMARY KEY,
    uploader TEXT NOT NULL,
    expires_ts INTEGER NOT NULL
  );
  `,
  // 4: device-list changes only one user sees (their user-signing key signed someone's master key).
  `
  ALTER TABLE device_list_changes ADD COLUMN viewer TEXT;
  `,
  // 5: each user's dehydrated device (MSC3814): the device itself is a row of devices.
  `
  CREATE TABLE dehydrated_devices (
    user_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    device_data TEXT NOT NULL
  );
  `,
  // 6: per application service: stream position pushed so far, the next transaction ID, and the
  // transaction in flight (resent as is after a restart, so the appservice can deduplicate it).
  `
  CREATE TABLE appservice_state (
    as_id TEXT PRIMARY KEY,
    last_pos INTEGER NOT NULL,
    next_txn INTEGER NOT NULL,
    pending_txn INTEGER,
    pending_body TEXT,
    pending_upto INTEGER,
    pending_acks TEXT
  );
  `,
  // 7: refresh-token rotation as the spec has it: a refresh token stays good until the access or
  // refresh token traded for it is first used (a client whose answer was lost can refresh again);
  // each new token names the refresh token it was traded for (its parent, revoked at that use).
  `
  ALTER TABLE refresh_tokens ADD COLUMN parent_hash TEXT;
  ALTER TABLE access_tokens ADD COLUMN parent_refresh_hash TEXT;
  CREATE INDEX refresh_tokens_parent ON refresh_tokens (parent_hash);
  CREATE INDEX access_tokens_parent ON access_tokens (parent_refresh_hash);
  `,
];
