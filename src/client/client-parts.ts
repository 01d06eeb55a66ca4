// Building a `MatrixClient`'s parts, each with its narrow host: the HTTP client and media, the
// session, what sync knows and the sync loop, account data, E2EE (and what its driver needs of
// the client), rooms, sending, and the session's lifecycle across them. The hosts' closures call
// back into the client (its events and a few public calls) only once it runs.
import { platform } from "#client-platform";
import type { JsonObject } from "../wire/index.ts";
import { AccountApi } from "./account.ts";
import { type ApiCall, apiCall } from "./call.ts";
import { ClientLifecycle } from "./client-lifecycle.ts";
import type { MatrixClientOptions } from "./client-options.ts";
import type { ClientStore } from "./client-store/index.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { ClientCryptoHost } from "./encryption/client-crypto-types.ts";
import { resolveEncryptionOptions } from "./encryption/options.ts";
import { EncryptionSession } from "./encryption/session.ts";
import type { MalformedResponseError } from "./errors.ts";
import type { TypedEmitter } from "./events/emitter.ts";
import type { ClientEventMap } from "./events/types.ts";
import { HttpClient } from "./http.ts";
import type { Logger } from "./logger.ts";
import { MediaApi, type UploadData, type UploadOptions } from "./media.ts";
import { RoomsApi } from "./rooms/api.ts";
import { Sender } from "./rooms/sender.ts";
import { TokenRefresher } from "./session/refresh.ts";
import { Session } from "./session/session.ts";
import type { EventEncryptor, SyncProcessor } from "./sync/hooks.ts";
import { SyncRunner } from "./sync/runner.ts";
import { SyncedState } from "./sync/state.ts";

/** What the parts call on the client they make up: its events and a few of its public calls. */
export interface PartsClient extends TypedEmitter<ClientEventMap> {
  setSyncProcessor(p: SyncProcessor | undefined): void;
  setEventEncryptor(e: EventEncryptor | undefined): void;
  sendEvent(roomId: string, type: string, content: JsonObject): Promise<string>;
  createDirectRoom(userId: string, opts: { encrypted?: boolean }): Promise<string>;
  uploadMedia(data: UploadData, opts: UploadOptions): Promise<string>;
  getAccountData(type: string): JsonObject | undefined;
  setAccountData(type: string, content: JsonObject): Promise<void>;
}

/** The E2EE hooks of the moment (the client's options' until E2EE or the app plugs others in). */
export interface ClientHooks {
  syncProcessor: SyncProcessor | undefined;
  eventEncryptor: EventEncryptor | undefined;
}

export interface ClientParts {
  readonly store: ClientStore;
  readonly http: HttpClient;
  readonly media: MediaApi;
  readonly hooks: ClientHooks;
  readonly session: Session;
  readonly synced: SyncedState;
  readonly sync: SyncRunner;
  readonly account: AccountApi;
  readonly e2ee: EncryptionSession;
  readonly rooms: RoomsApi;
  readonly sender: Sender;
  readonly lifecycle: ClientLifecycle;
}

export function buildClientParts(
  opts: MatrixClientOptions,
  logger: Logger,
  client: PartsClient,
): ClientParts {
  const clock = opts.clock ?? systemClock;
  const store = opts.store ?? platform.defaultClientStore();
  const hooks: ClientHooks = { syncProcessor: opts.syncProcessor, eventEncryptor: opts.eventEncryptor };
  const http = new HttpClient({
    baseUrl: opts.homeserverUrl,
    logger,
    accessToken: () => session.current?.accessToken,
    ...(opts.appserviceUser
      ? {
          assertedIdentity: () => {
            const s = session.current;
            return s ? { userId: s.userId, deviceId: s.deviceId } : undefined;
          },
        }
      : {}),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    transport: platform.httpTransport?.(),
    renewal: {
      fresh: () => refresher.fresh(),
      rejected: (token, error) => refresher.rejected(token, error),
    },
  });
  const media = new MediaApi(http);
  const call: ApiCall = apiCall(http, clock, logger);
  const synced = new SyncedState(opts.roomNameFormatter);
  const userId = () => session.require().userId;
  // A login's or renewal's field left out (never its value): logged, and the application told.
  const warnAnswer = (warning: MalformedResponseError) => {
    logger.warn({ endpoint: warning.endpoint, issues: warning.issues }, "answer field left out");
    void client.emit("error", warning);
  };
  const session = new Session({
    call,
    store,
    homeserverUrl: http.baseUrl,
    refreshTokens: opts.refreshTokens ?? true,
    clock,
    tokensTaken: (s) => refresher.planFor(s),
    warn: warnAnswer,
  });
  const refresher = new TokenRefresher({
    call,
    store,
    session,
    clock,
    logger,
    renewed: (s) => void client.emit("session.renewed", { ...s }),
    warn: warnAnswer,
  });
  const sync = new SyncRunner({
    http,
    call,
    clock,
    logger,
    store,
    synced,
    emitter: client,
    options: opts,
    requireSession: () => void session.require(),
    processor: () => hooks.syncProcessor,
    onSessionRevoked: async (softLogout) => {
      // A soft logout keeps the device (and its keys): only the token is gone.
      if (!softLogout) await lifecycle.forgetSession(false);
      else session.drop();
      // In browsers, waited for until a stop is asked for (a listener awaiting close() asks for one).
      await sync.listened(client.emit("session.loggedOut", { softLogout }));
    },
  });
  const account = new AccountApi({ call, synced, userId });
  const e2ee = new EncryptionSession(resolveEncryptionOptions(opts.encryption), {
    driver: driverHost({ http, media, synced, sync, clock, logger, client }),
    nextBatch: () => sync.nextBatch,
    setSyncProcessor: (p) => client.setSyncProcessor(p ?? opts.syncProcessor),
    setEventEncryptor: (e) => client.setEventEncryptor(e ?? opts.eventEncryptor),
    sendVerificationEvent: (roomId, type, content, partner) =>
      sender.sendVerificationEvent(roomId, type, content, partner),
    directRoomWith: (user) => client.createDirectRoom(user, { encrypted: true }),
    emitVerificationRequest: (request) => void client.emit("verification.request", request),
    reportError: (error) => void client.emit("error", error),
  });
  const rooms = new RoomsApi({
    call,
    synced,
    account,
    logger,
    userId,
    decryptor: () => hooks.syncProcessor,
    e2ee,
  });
  const sender = new Sender({
    http,
    call,
    clock,
    logger,
    sendBackoff: opts.sendBackoff,
    synced,
    rooms,
    userId,
    uploadMedia: (data, o) => client.uploadMedia(data, o),
    encryptor: () => hooks.eventEncryptor,
    encryptionEnabled: () => e2ee.running !== undefined,
  });
  const lifecycle = new ClientLifecycle({ store, logger, session, synced, sync, sender, e2ee, refresher });
  // Verification rides on the events the client emits anyway (decrypted by then).
  client.on("room.event", (_room, event) => e2ee.onRoomEvent(event));
  // Or once their key came: a request whose room key arrived after it.
  client.on("room.decrypted", (_room, event) => e2ee.onRoomEvent(event));
  // A default secret storage key moved elsewhere: the dehydration schedule follows it.
  client.on("accountData", (event) => e2ee.onAccountData(event));
  client.on("toDevice", (event) => {
    if (event.type.startsWith("m.key.verification.")) e2ee.onVerificationToDevice();
  });
  return { store, http, media, hooks, session, synced, sync, account, e2ee, rooms, sender, lifecycle };
}

/** What the E2EE driver needs of the client. */
function driverHost(parts: {
  http: HttpClient;
  media: MediaApi;
  synced: SyncedState;
  sync: SyncRunner;
  clock: Clock;
  logger: Logger;
  client: PartsClient;
}): ClientCryptoHost {
  const { http, media, synced, sync, clock, logger, client } = parts;
  return {
    http,
    logger,
    getRoom: (roomId) => synced.room(roomId),
    rooms: () => synced.rooms.values(),
    // Emitted under the crypto lease, which a close waits for: in browsers, waited for until a stop
    // is asked for, as the sync loop waits for listeners.
    emitDecrypted: (room, event) => sync.listened(client.emit("room.decrypted", room, event)),
    emitUndecryptable: (room, event) => sync.listened(client.emit("room.undecryptable", room, event)),
    emitKeyRequest: (request) => void client.emit("crypto.keyRequest", request),
    reportError: (error) => void client.emit("error", error),
    membersFetched: (room, news) => sync.membersFetched(room, news),
    getAccountData: (type) => client.getAccountData(type),
    setAccountData: (type, content) => client.setAccountData(type, content),
    clock,
    uploadMedia: (data) => media.upload(data),
    downloadMedia: async (mxcUri, maxBytes) => (await media.download(mxcUri, { maxBytes })).data,
  };
}
