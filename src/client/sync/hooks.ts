// The seams the E2EE layer plugs into. The client awaits them inside sync handling, before any
// event is emitted and before the sync token is saved, so the crypto store and the client store
// never disagree about what was processed.
import type { ClientEvent, JsonObject, StateEvent, ToDeviceEvent } from "../../wire/index.ts";
import type { EncryptionInfo, UndecryptableCode } from "../events/types.ts";
import type { Room } from "../rooms/room.ts";

/**
 * A member event a room's `/members` answer brought that changes what we knew (the E2EE layer
 * fetches the list before sharing a room key), with the event it replaced.
 */
export interface FetchedMember {
  readonly event: StateEvent;
  readonly previous: StateEvent | undefined;
}

/** The parts of a sync response the E2EE layer consumes. */
export interface SyncCryptoChanges {
  nextBatch: string;
  toDeviceEvents: ToDeviceEvent[];
  deviceLists: { changed: string[]; left: string[] };
  /**
   * `{}` (every count zero, as the spec reads it) when a `/sync` response left the field out;
   * `undefined` when a response fed through `feedSync` did (an appservice's transactions leave out
   * counts that did not change): the count is then unchanged, not zero.
   */
  oneTimeKeyCounts: Record<string, number> | undefined;
  /** `undefined` when the server did not send the field (older servers): not the same as `[]`. */
  unusedFallbackKeyTypes: string[] | undefined;
  /**
   * Membership events of this response, in order, for key-sharing decisions; `sender` is who sent
   * the event (for our own invite, the inviter). `prevMembership` and `prevSender`: the membership
   * the event replaced and its sender, as the server tells them (`unsigned.prev_content`, and
   * Synapse's `unsigned.prev_sender`), when it does: a join whose own invite or leave is not in
   * the response (a limited timeline) still says what it came from.
   */
  changedMemberships: {
    roomId: string;
    userId: string;
    membership: string;
    sender: string;
    prevMembership?: string;
    prevSender?: string;
  }[];
  /**
   * Joined rooms whose timeline was limited in this response: members may have come and gone
   * unseen (lazy-loaded members, a gap not filled), so the member list is fetched again before
   * the next room-key share.
   */
  limitedRooms?: string[];
  /**
   * Senders of the encrypted timeline events in this response's joined rooms, so their devices
   * can be fetched in one query before the events are decrypted.
   */
  encryptedSenders: string[];
}

export type DecryptionResult =
  | { ok: true; type: string; content: JsonObject; info: Extract<EncryptionInfo, { decrypted: true }> }
  | { ok: false; code: UndecryptableCode; reason: string; withheldCode?: string };

/** One room's encrypted timeline events (or a filled gap's) of a sync response. */
export interface SyncTimeline {
  readonly roomId: string;
  readonly events: readonly ClientEvent[];
}

export interface SyncProcessor {
  /**
   * Called first for every sync response. Returns the to-device events to emit (decrypted ones in
   * place of their encrypted form). If it throws, the response is not acknowledged: nothing is
   * emitted, the token is not saved and the same response is fetched again after a backoff.
   */
  processSyncChanges(changes: SyncCryptoChanges): Promise<ToDeviceEvent[]>;
  /** Decrypts one `m.room.encrypted` timeline event. Must not throw for undecryptable input. */
  decryptRoomEvent?(room: Room, event: ClientEvent): Promise<DecryptionResult>;
  /**
   * Decrypts a room's `m.room.encrypted` timeline events of one response (or one gap) at once,
   * results in the order of `events`; preferred over `decryptRoomEvent` when present (one engine
   * step and one store read for all of them). Must not throw for undecryptable input.
   */
  decryptRoomEvents?(room: Room, events: readonly ClientEvent[]): Promise<DecryptionResult[]>;
  /**
   * Decrypts the `m.room.encrypted` events of every room timeline (and filled gap) of one response
   * at once, results per timeline in the order of its events; preferred over `decryptRoomEvents`
   * when present (one engine step for the whole response rather than one per room). Must not
   * throw for undecryptable input.
   */
  decryptTimelines?(timelines: readonly SyncTimeline[]): Promise<DecryptionResult[][]>;
  /** After the response's events were emitted and just before the token is saved. */
  beforeSaveSyncToken?(nextBatch: string): Promise<void>;
  /**
   * For processors whose store other processes share: the mark handed to the first
   * `handleSyncUnit`, taken before the first sync request.
   */
  syncMark?(): number;
  /**
   * Runs `handle` (the whole handling of one response) as one unit of work on the shared store.
   * `mark` says when `since` was last known to be the store's sync position too: the mark the unit
   * that reached `since` returned (or `syncMark()`); `undefined` when it is not known to be. When
   * another process may have written since that mark and the store's sync token is not `since`
   * (another process handled a range from there), it calls `handle({ position })` — rooms only, the
   * shared position saved — and reports `moved: position`. Resolves with the mark for the next
   * response, taken under the same lease.
   */
  handleSyncUnit?(
    since: string | undefined,
    mark: number | undefined,
    handle: (shared?: { position: string }) => Promise<void>,
  ): Promise<{ mark: number; moved?: string }>;
}

/** Encrypts outgoing room events in encrypted rooms; the client calls it once per event (retries reuse the result). */
export interface EventEncryptor {
  encryptRoomEvent(
    room: Room,
    type: string,
    content: JsonObject,
  ): Promise<{ type: string; content: JsonObject }>;
  /**
   * An in-room verification event of a flow with `partner`, whose devices must be able to read it
   * whatever the room's trust settings (the spec). Without it, `encryptRoomEvent` is used.
   */
  encryptVerificationEvent?(
    room: Room,
    type: string,
    content: JsonObject,
    partner: string,
  ): Promise<{ type: string; content: JsonObject }>;
}
