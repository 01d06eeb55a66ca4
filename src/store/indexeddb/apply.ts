/**
 * Writes one \`CryptoChanges\` into the IndexedDB crypto store's write transaction (\`saveChanges\`):
 * every record validated, secret fields sealed by the store cipher. Requests are queued without
 * awaiting each, except the reads a change depends on; an abort rolls back all of them.
 */
import type { CryptoChanges } from "../changes.ts";
import { accountAd, rowAd, type StoreCipher } from "../cipher/store-cipher.ts";
import type { StoreIdentity } from "../records.ts";
import { MAX_STORED_OLM_MESSAGE_HASHES, MAX_STORED_WITHHELD } from "../store.ts";
import {
  accountToJson,
  mergeOutboundSharing,
  onlyRatchet,
  outboundNotStored,
  parseAccount,
  parseBackupState,
  parseCrossSigningIdentity,
  parseCustomKey,
  parseCustomValue,
  parseDevice,
  parseInboundGroupSession,
  parseNextBatch,
  parseOlmMessageHash,
  parseOlmSession,
  parseOutboundGroupSession,
  parseOutboundGroupSessionUpdate,
  parseOutboundSharing,
  parseOutgoingKeyRequest,
  parseQueuedRequest,
  parseReplay,
  parseRoomSettings,
  parseSecret,
  parseSecretName,
  parseTrackedUser,
  parseWithheld,
} from "../validate.ts";
import { putInOrder, requestToPromise } from "./ordered.ts";
import { applyRivals } from "./rivals.ts";
import type { IdbStoreName } from "./upgrades.ts";

function isRow(v: unknown): v is { readonly [field: string]: unknown } {
  return typeof v === "object" && v !== null;
}

export async function applyChanges(
  tx: IDBTransaction,
  c: CryptoChanges,
  cipher: StoreCipher,
  identity: StoreIdentity,
  range: typeof IDBKeyRange,
): Promise<void> {
  const os = (name: IdbStoreName): IDBObjectStore => tx.objectStore(name);
  const inbound = os("inbound_group_sessions");
  if (c.resetBackedUp === true) {
    const keys = await requestToPromise(inbound.index("backedUp").getAllKeys(1));
    const rows = await Promise.all(keys.map((k) => requestToPromise(inbound.get(k))));
    for (const r of rows) if (isRow(r)) inbound.put({ ...r, backedUp: 0 });
  }
  if (c.account !== undefined)
    os("meta").put(cipher.encrypt(accountToJson(parseAccount(c.account)), accountAd(identity)), "account");
  for (const x of c.olmSessions ?? []) {
    const r = parseOlmSession(x);
    os("olm_sessions").put({
      ...r,
      pickle: cipher.encrypt(r.pickle, rowAd("olm", r.senderKey, r.sessionId)),
    });
  }
  for (const x of c.inboundGroupSessions ?? []) {
    const r = parseInboundGroupSession(x);
    inbound.put({
      ...r,
      backedUp: r.backedUp ? 1 : 0,
      pickle: cipher.encrypt(r.pickle, rowAd("inbound", r.roomId, r.sessionId)),
    });
  }
  for (const x of c.outboundGroupSessions ?? []) {
    const { sharedWith, pendingShares, withheldFrom, ...r } = parseOutboundGroupSession(x);
    os("outbound_group_sessions").put({
      ...r,
      pickle: cipher.encrypt(r.pickle, rowAd("outbound", r.roomId)),
    });
    os("outbound_group_session_sharing").put({ roomId: r.roomId, sharedWith, pendingShares, withheldFrom });
  }
  const updates = (c.outboundGroupSessionUpdates ?? []).map(parseOutboundGroupSessionUpdate);
  for (const u of updates) {
    // Reads see the puts queued above in this transaction. The ratchet row is small; the device
    // lists live in their own object store, read and rewritten only when devices are added.
    const outbound = os("outbound_group_sessions");
    const row: unknown = await requestToPromise(outbound.get(u.roomId));
    if (!isRow(row) || row.sessionId !== u.sessionId) throw outboundNotStored(u.roomId);
    outbound.put({
      ...row,
      messageCount: u.messageCount,
      pickle: cipher.encrypt(u.pickle, rowAd("outbound", u.roomId)),
    });
    if (onlyRatchet(u)) continue;
    const sharingStore = os("outbound_group_session_sharing");
    const old = parseOutboundSharing(await requestToPromise(sharingStore.get(u.roomId)));
    sharingStore.put({ roomId: u.roomId, ...mergeOutboundSharing(old, u) });
  }
  for (const x of c.devices ?? []) os("devices").put(parseDevice(x));
  for (const x of c.crossSigningIdentities ?? [])
    os("cross_signing_identities").put(parseCrossSigningIdentity(x));
  for (const [name, value] of Object.entries(c.secrets ?? {})) {
    if (value === null) os("secrets").delete(parseSecretName(name));
    else os("secrets").put({ name, value: cipher.encrypt(parseSecret(name, value), rowAd("secret", name)) });
  }
  for (const x of c.trackedUsers ?? []) os("tracked_users").put(parseTrackedUser(x));
  for (const x of c.outgoingKeyRequests ?? []) os("outgoing_key_requests").put(parseOutgoingKeyRequest(x));
  const withheld = (c.withheld ?? []).map((x) => {
    const r = parseWithheld(x);
    return { key: [r.roomId, r.sessionId], value: r };
  });
  await putInOrder(os("withheld"), withheld, {
    max: MAX_STORED_WITHHELD,
    replace: true,
    range: range,
  });
  // Rivals touch no other record: their upserts, bounds and deletions together, in that order.
  await applyRivals(os("rival_room_keys"), c.rivalRoomKeys ?? [], c.deletedRivalRoomKeys ?? [], cipher);
  for (const x of c.replays ?? []) os("replays").put(parseReplay(x));
  for (const x of c.roomSettings ?? []) os("room_settings").put(parseRoomSettings(x));
  if (c.backupState === null) os("meta").delete("backup_state");
  else if (c.backupState !== undefined) os("meta").put(parseBackupState(c.backupState), "backup_state");
  for (const x of c.queuedRequests ?? []) {
    const r = parseQueuedRequest(x);
    os("queued_requests").put({ ...r, body: cipher.encrypt(r.body, rowAd("queued", r.requestId)) });
  }
  const hashes = (c.olmMessageHashes ?? []).map((x) => {
    const r = parseOlmMessageHash(x);
    return { key: [r.senderKey, r.hash], value: r };
  });
  await putInOrder(os("olm_message_hashes"), hashes, {
    max: MAX_STORED_OLM_MESSAGE_HASHES,
    replace: false,
    range: range,
  });
  for (const [key, value] of Object.entries(c.customValues ?? {})) {
    if (value === null) os("custom_values").delete(parseCustomKey(key));
    else {
      const sealed = cipher.encrypt(parseCustomValue(parseCustomKey(key), value), rowAd("custom", key));
      os("custom_values").put({ key, value: sealed });
    }
  }
  if (c.nextBatch !== undefined) parseNextBatch(c.nextBatch); // validate before any await below
  const marks = c.backedUp ?? [];
  if (marks.length > 0) {
    const rows = await Promise.all(marks.map((m) => requestToPromise(inbound.get([m.roomId, m.sessionId]))));
    for (const r of rows) if (isRow(r) && r.backedUp === 0) inbound.put({ ...r, backedUp: 1 });
  }
  for (const { senderKey, sessionId } of c.deletedOlmSessions ?? [])
    os("olm_sessions").delete([senderKey, sessionId]);
  for (const roomId of c.deletedOutboundGroupSessions ?? []) {
    os("outbound_group_sessions").delete(roomId);
    os("outbound_group_session_sharing").delete(roomId);
  }
  for (const userId of c.untrackedUsers ?? []) os("tracked_users").delete(userId);
  for (const id of c.deletedOutgoingKeyRequests ?? []) os("outgoing_key_requests").delete(id);
  for (const id of c.deletedQueuedRequests ?? []) os("queued_requests").delete(id);
  if (c.nextBatch !== undefined) os("meta").put(c.nextBatch, "next_batch");
}
