/**
 * Numbered IndexedDB schema upgrades, the counterpart of the SQLite migrations. IndexedDB runs
 * them inside its version-change transaction when the database is opened at a higher version;
 * each step runs once, in order, for every version the database has not reached yet.
 */

export interface IdbUpgrade {
  readonly version: number;
  readonly description: string;
  readonly run: (db: IDBDatabase, tx: IDBTransaction) => void;
}

export const IDB_UPGRADES: readonly IdbUpgrade[] = [
  {
    version: 1,
    description: "identity, account, Olm and Megolm sessions, devices, secrets, key requests, replays",
    run(db) {
      db.createObjectStore("meta");
      db.createObjectStore("olm_sessions", { keyPath: ["senderKey", "sessionId"] }).createIndex(
        "senderKey",
        "senderKey",
      );
      db.createObjectStore("inbound_group_sessions", { keyPath: ["roomId", "sessionId"] });
      db.createObjectStore("outbound_group_sessions", { keyPath: "roomId" });
      db.createObjectStore("devices", { keyPath: ["userId", "deviceId"] }).createIndex(
        "curve25519Key",
        "curve25519Key",
      );
      db.createObjectStore("cross_signing_identities", { keyPath: "userId" });
      db.createObjectStore("secrets", { keyPath: "name" });
      db.createObjectStore("tracked_users", { keyPath: "userId" });
      db.createObjectStore("outgoing_key_requests", { keyPath: "requestId" }).createIndex("session", [
        "roomId",
        "sessionId",
      ]);
      db.createObjectStore("withheld", { keyPath: ["roomId", "sessionId"] });
      db.createObjectStore("replays", { keyPath: ["roomId", "sessionId", "messageIndex"] });
    },
  },
  {
    version: 2,
    description: "room settings, the persisted outgoing request queue, an index of sessions to back up",
    run(db, tx) {
      db.createObjectStore("room_settings", { keyPath: "roomId" });
      db.createObjectStore("queued_requests", { keyPath: "requestId" }).createIndex("age", [
        "createdAt",
        "requestId",
      ]);
      // `backedUp` is stored as 0/1 in this object store: booleans are not valid IndexedDB keys.
      tx.objectStore("inbound_group_sessions").createIndex("backedUp", "backedUp");
    },
  },
  {
    version: 3,
    description: "hashes of decrypted Olm messages, custom values",
    run(db) {
      db.createObjectStore("olm_message_hashes", { keyPath: ["senderKey", "hash"] });
      db.createObjectStore("custom_values", { keyPath: "key" });
    },
  },
  {
    version: 4,
    description:
      "outbound sessions' device lists apart from their ratchet, so a message rewrites only the ratchet",
    run(db, tx) {
      const sharing = db.createObjectStore("outbound_group_session_sharing", { keyPath: "roomId" });
      const outbound = tx.objectStore("outbound_group_sessions");
      const cursor = outbound.openCursor();
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (c === null) return;
        const row: unknown = c.value;
        if (typeof row === "object" && row !== null) {
          const { sharedWith, pendingShares, withheldFrom, ...ratchet } = row as Record<string, unknown>;
          sharing.put({ roomId: ratchet.roomId, sharedWith, pendingShares, withheldFrom });
          c.update(ratchet);
        }
        c.continue();
      };
    },
  },
  {
    version: 5,
    description:
      "withheld notices and Olm message hashes numbered in the order stored, so the oldest give way at their bound",
    // Each row gets `seq` (indexed): saves number new rows above the highest and delete from the
    // low end (`ordered.ts`). Stored rows had no order: they are numbered in key order.
    run(_db, tx) {
      for (const name of ["withheld", "olm_message_hashes"] as const) {
        const store = tx.objectStore(name);
        store.createIndex("seq", "seq", { unique: true });
        let seq = 0;
        const cursor = store.openCursor();
        cursor.onsuccess = () => {
          const c = cursor.result;
          if (c === null) return;
          const row: unknown = c.value;
          if (typeof row === "object" && row !== null) c.update({ ...row, seq: ++seq });
          c.continue();
        };
      }
    },
  },
  {
    version: 6,
    description: "tracked users' sender-only mark and order, so the bound on them holds across restarts",
    // A row's optional `senderOrder` marks a user tracked only as a sender. Users tracked before
    // this version were room members or not known to be otherwise: any such field is cleared, so
    // none is ever given up. The version also keeps an older Keyroom, which would rewrite these
    // rows without the mark, from opening the database.
    run(_db, tx) {
      const cursor = tx.objectStore("tracked_users").openCursor();
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (c === null) return;
        const row: unknown = c.value;
        if (typeof row === "object" && row !== null && "senderOrder" in row) {
          const { senderOrder: _, ...member } = row as Record<string, unknown>;
          c.update(member);
        }
        c.continue();
      };
    },
  },
  {
    version: 7,
    description:
      "rival room keys: direct shares of a held session naming another creator, kept across restarts",
    // Keyed by room, session and sender key; `seq` (unique index) numbers rows in the order stored,
    // for the bounds (`rivals.ts`).
    run(db) {
      db.createObjectStore("rival_room_keys", { keyPath: ["roomId", "sessionId", "senderKey"] }).createIndex(
        "seq",
        "seq",
        { unique: true },
      );
    },
  },
];

export const IDB_SCHEMA_VERSION: number = IDB_UPGRADES[IDB_UPGRADES.length - 1]?.version ?? 1;

export const IDB_STORE_NAMES = [
  "meta",
  "olm_sessions",
  "inbound_group_sessions",
  "outbound_group_sessions",
  "devices",
  "cross_signing_identities",
  "secrets",
  "tracked_users",
  "outgoing_key_requests",
  "withheld",
  "replays",
  "room_settings",
  "queued_requests",
  "olm_message_hashes",
  "custom_values",
  "outbound_group_session_sharing",
  "rival_room_keys",
] as const;

export type IdbStoreName = (typeof IDB_STORE_NAMES)[number];

/** Runs the upgrades from `oldVersion` up to `target` (all of them by default). */
export function upgradeIdb(
  db: IDBDatabase,
  tx: IDBTransaction,
  oldVersion: number,
  target = IDB_SCHEMA_VERSION,
): void {
  for (const u of IDB_UPGRADES) if (u.version > oldVersion && u.version <= target) u.run(db, tx);
}
