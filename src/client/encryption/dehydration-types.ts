// The types of `DehydratedDevices` (dehydration.ts), shared with its code loaded on first use
// (dehydration-impl.ts).
import type { DecryptedRoomEvent, OlmMachine, UnlockedSecretStorageKey } from "../../e2ee/index.ts";
import type { Clock } from "../clock.ts";
import type { HttpClient } from "../http.ts";
import type { Logger } from "../logger.ts";
import type { SecretStorage } from "./secret-storage.ts";

export interface DehydrationHost {
  readonly http: HttpClient;
  readonly machine: OlmMachine;
  readonly clock: Clock;
  readonly secretStorage: SecretStorage;
  /** Our own device keys and cross-signing keys fetched again (the self-signing key must be current). */
  refreshOwnKeys(): Promise<void>;
  /** Sends what the engine queued (device queries for senders we did not know). */
  flush(): Promise<void>;
  emitRedecrypted(events: readonly DecryptedRoomEvent[]): Promise<void>;
  reportError(error: unknown): void;
  /** Says why a schedule stopped on its own (a default key moved elsewhere); never keys. */
  readonly logger: Logger;
  /** Runs scheduled work as one unit of work on the crypto store (its lease); inline when absent. */
  exclusive?<T>(work: () => Promise<T>): Promise<T>;
}

export interface RehydrationResult {
  /** The dehydrated device that was read (it is deleted or replaced afterwards). */
  readonly deviceId: string;
  /** To-device events fetched from it. */
  readonly events: number;
  /** Room keys among them that were new or better than ours. */
  readonly imported: number;
  /**
   * True when the device had more events than `MAX_DEHYDRATED_DEVICE_EVENTS` (100 000): only that
   * many were read, and room keys in the rest are lost (the device is replaced afterwards).
   */
  readonly truncated: boolean;
}

export interface DehydrationStartOptions {
  /** The 32-byte dehydration key; or `secretStorageKey` to read it (or create and store it). */
  readonly key?: Uint8Array;
  readonly secretStorageKey?: UnlockedSecretStorageKey;
  /** Rehydrate the device on the server first, if there is one (default true). */
  readonly rehydrate?: boolean;
  /** Replace the dehydrated device this often (default weekly; at least one minute). */
  readonly periodMs?: number;
}
