// What a `MatrixClient` is created with.
import type { BackoffPolicy } from "./backoff.ts";
import type { ClientStore } from "./client-store/index.ts";
import type { Clock } from "./clock.ts";
import type { EncryptionOptions } from "./encryption/options.ts";
import type { FetchLike } from "./http.ts";
import type { Logger } from "./logger.ts";
import type { RoomNameFormatter } from "./rooms/display-name.ts";
import type { EventEncryptor, SyncProcessor } from "./sync/hooks.ts";
import type { SyncOptions } from "./sync/runner.ts";

export interface MatrixClientOptions extends SyncOptions {
  /** Base URL of the homeserver (use `MatrixClient.discover` for a user ID or server name). */
  homeserverUrl: string;
  /**
   * Session, sync position and room state. Default: in memory on Node, IndexedDB
   * (`keyroom-session`) in browsers, so a reload keeps the session.
   */
  store?: ClientStore;
  /**
   * Every request goes through this `fetch` when given. Default: the platform's transport for
   * JSON requests (`node:http` with keep-alive agents on Node) and the global `fetch` for media
   * (and for everything in browsers).
   */
  fetch?: FetchLike;
  /**
   * Aborting it ends the client's requests in flight with `NetworkError` `ABORTED` and refuses
   * later ones alike: for giving up on a client, e.g. one stopped while its `restore()` or login
   * still waits on the server. That call then settles at once, and `close()` can follow it.
   */
  signal?: AbortSignal;
  logger?: Logger;
  /**
   * Ask for a refresh token at login and registration (default true): the server may then give an
   * access token that expires, which the client renews before it does (and when the server says
   * it did), saving the new tokens to `store`. See docs/client.md, "Refresh tokens".
   */
  refreshTokens?: boolean;
  clock?: Clock;
  sendBackoff?: BackoffPolicy;
  syncProcessor?: SyncProcessor;
  eventEncryptor?: EventEncryptor;
  /**
   * End-to-end encryption: `true` for the defaults (SQLite store on Node, IndexedDB in
   * browsers), or options (store
   * location or instance, passphrase, `restoreDeviceId`, `verifyDevices`). See docs/e2ee.md.
   */
  encryption?: true | EncryptionOptions;
  /**
   * Words a room's display name made from its members, when it has no name or alias (see
   * `RoomNameParts`): for an application in another language than English, the default.
   */
  roomNameFormatter?: RoomNameFormatter;
}
