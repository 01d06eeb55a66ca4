// A custom crypto store: anything that implements `CryptoStore` (a few reads and one atomic
// `saveChanges`) can hold the keys. This one wraps the memory store and logs what each step saved
// (names and counts only: the records hold keys). Run the conformance suite on yours (see
// examples.test.ts) before trusting it with real keys.
import { MatrixClient } from "keyroom";
import {
  type BackUpReadOptions,
  type CryptoChanges,
  type CryptoStore,
  type InboundGroupSessionCounts,
  type InboundGroupSessionPage,
  type JsonValue,
  MemoryCryptoStore,
  type OlmSessionRecord,
  type RoomSessionKey,
  type StoreIdentity,
} from "keyroom/store";
import { type ExampleEnv, isMain, nextMessage, runAlone, uniqueName } from "./support.ts";

// #region logging-store
/** "devices×2 olmSessions×1 nextBatch": what a `saveChanges` call carries, without any content. */
export function summarize(changes: CryptoChanges): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined || value === false) continue;
    if (Array.isArray(value)) {
      if (value.length > 0) parts.push(`${name}×${value.length}`);
    } else if (name === "secrets" || name === "customValues") {
      const count = Object.keys(value ?? {}).length;
      if (count > 0) parts.push(`${name}×${count}`);
    } else parts.push(name); // the account, the backup state, the sync token...
  }
  return parts.join(" ");
}

export class LoggingCryptoStore implements CryptoStore {
  constructor(
    private readonly inner: CryptoStore,
    private readonly log: (line: string) => void,
  ) {}

  async saveChanges(changes: CryptoChanges): Promise<void> {
    const started = performance.now();
    await this.inner.saveChanges(changes);
    this.log(`saved ${summarize(changes)} in ${(performance.now() - started).toFixed(1)} ms`);
  }
  async close(): Promise<void> {
    await this.inner.close();
    this.log("closed");
  }

  // The cross-process lease and every read go straight to the wrapped store.
  tryAcquireLease(durationMs: number) {
    return this.inner.tryAcquireLease(durationMs);
  }
  renewLease(durationMs: number) {
    return this.inner.renewLease(durationMs);
  }
  releaseLease() {
    return this.inner.releaseLease();
  }
  onChangedElsewhere(listener: () => void) {
    return this.inner.onChangedElsewhere(listener);
  }
  loadIdentity(): Promise<StoreIdentity> {
    return this.inner.loadIdentity();
  }
  loadAccount() {
    return this.inner.loadAccount();
  }
  getOlmSessions(senderKey: string, unreadable?: string[]): Promise<OlmSessionRecord[]> {
    return this.inner.getOlmSessions(senderKey, unreadable);
  }
  getInboundGroupSession(roomId: string, sessionId: string) {
    return this.inner.getInboundGroupSession(roomId, sessionId);
  }
  getInboundGroupSessions(keys: readonly RoomSessionKey[]) {
    return this.inner.getInboundGroupSessions(keys);
  }
  getInboundGroupSessionsForRoom(roomId: string, unreadable?: RoomSessionKey[]) {
    return this.inner.getInboundGroupSessionsForRoom(roomId, unreadable);
  }
  countInboundGroupSessions(): Promise<InboundGroupSessionCounts> {
    return this.inner.countInboundGroupSessions();
  }
  listInboundGroupSessions(page: InboundGroupSessionPage, unreadable?: RoomSessionKey[]) {
    return this.inner.listInboundGroupSessions(page, unreadable);
  }
  getInboundGroupSessionsToBackUp(limit: number, unreadable?: RoomSessionKey[], options?: BackUpReadOptions) {
    return this.inner.getInboundGroupSessionsToBackUp(limit, unreadable, options);
  }
  getOutboundGroupSession(roomId: string) {
    return this.inner.getOutboundGroupSession(roomId);
  }
  getUserDevices(userId: string) {
    return this.inner.getUserDevices(userId);
  }
  getDevicesOfUsers(userIds: readonly string[]) {
    return this.inner.getDevicesOfUsers(userIds);
  }
  getDeviceByCurve25519Key(curve25519Key: string) {
    return this.inner.getDeviceByCurve25519Key(curve25519Key);
  }
  getCrossSigningIdentity(userId: string) {
    return this.inner.getCrossSigningIdentity(userId);
  }
  getSecret(name: string) {
    return this.inner.getSecret(name);
  }
  getTrackedUsers() {
    return this.inner.getTrackedUsers();
  }
  getOutgoingKeyRequests() {
    return this.inner.getOutgoingKeyRequests();
  }
  getWithheld(roomId: string, sessionId: string) {
    return this.inner.getWithheld(roomId, sessionId);
  }
  getRivalRoomKeys() {
    return this.inner.getRivalRoomKeys();
  }
  getReplay(roomId: string, sessionId: string, messageIndex: number) {
    return this.inner.getReplay(roomId, sessionId, messageIndex);
  }
  getReplays(roomId: string, sessionId: string, limit: number) {
    return this.inner.getReplays(roomId, sessionId, limit);
  }
  getReplaysOfSessions(sessions: readonly RoomSessionKey[], limit: number) {
    return this.inner.getReplaysOfSessions(sessions, limit);
  }
  getRoomSettings(roomId: string) {
    return this.inner.getRoomSettings(roomId);
  }
  getBackupState() {
    return this.inner.getBackupState();
  }
  getQueuedRequests() {
    return this.inner.getQueuedRequests();
  }
  isOlmMessageKnown(senderKey: string, hash: string): Promise<boolean> {
    return this.inner.isOlmMessageKnown(senderKey, hash);
  }
  getCustomValue(key: string): Promise<JsonValue | undefined> {
    return this.inner.getCustomValue(key);
  }
  getNextBatch(): Promise<string | undefined> {
    return this.inner.getNextBatch();
  }
}
// #endregion logging-store

export interface CustomStoreResult {
  readonly read: string;
  readonly log: readonly string[];
}

export async function run({ homeserverUrl, dir }: ExampleEnv): Promise<CustomStoreResult> {
  void dir; // everything stays in memory
  const password = "dave's password";
  const signup = new MatrixClient({ homeserverUrl });
  await signup.register({ username: uniqueName("dave"), password });
  const userId = signup.userId;
  await signup.logout();
  const alice = new MatrixClient({ homeserverUrl, encryption: true });
  await alice.register({ username: uniqueName("alice"), password: "alice's password" });

  // #region use-custom-store
  // A store instance belongs to one user and device, so choose the device ID and log in with it.
  const log: string[] = [];
  const store = new LoggingCryptoStore(
    await MemoryCryptoStore.open({ userId, deviceId: "DAVEBOT" }),
    (line) => void log.push(line),
  );
  const dave = new MatrixClient({ homeserverUrl, encryption: { store } });
  await dave.login({ user: userId, password, deviceId: "DAVEBOT" });
  // #endregion use-custom-store

  const roomId = await alice.createRoom({ name: "Custom store", invite: [userId] });
  await dave.joinRoom(roomId);
  await dave.startSync();
  const incoming = nextMessage(dave, roomId);
  await alice.sendText(roomId, "Stored my way");
  const event = await incoming;

  await dave.close(); // a store you passed in stays open: you opened it, you close it
  await store.close();
  await alice.close();
  return { read: String(event.content.body), log };
}

if (isMain(import.meta.url)) await runAlone(run);
