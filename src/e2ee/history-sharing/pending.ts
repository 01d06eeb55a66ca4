/**
 * What history sharing remembers across restarts (one custom value in the crypto store): bundles
 * received and not yet imported, and invites we accepted. A bundle is imported only when it comes
 * from the user whose invite we accepted, within {@link BUNDLE_ACCEPT_WINDOW_MS} of accepting
 * (the spec's "recently", 24 hours as it suggests); until then it is only remembered, never
 * downloaded, so nobody can make us fetch data by sending bundles.
 */
import { type EncryptedFile, isEncryptedFile } from "../../crypto/attachments/file-info.ts";
import type { JsonValue } from "../../store/json.ts";
import { isRecord } from "../../wire/json.ts";
import { isId } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";
import { isBundleUrl } from "./bundle.ts";

export const BUNDLE_ACCEPT_WINDOW_MS = 24 * 60 * 60 * 1000;
/**
 * Bundles remembered at most: anyone may send us some. Past it, the oldest not from the inviter of
 * a room we joined are dropped first.
 */
export const MAX_PENDING_BUNDLES = 100;
/** Accepted invites remembered at most (they expire after the window anyway). */
export const MAX_ACCEPTED_INVITES = 100;

const CUSTOM_KEY = "keyroom.history_sharing.v1";

export interface PendingBundle {
  readonly roomId: string;
  readonly sender: string;
  /** The Curve25519 key of the device that sent it over Olm. */
  readonly senderKey: string;
  readonly file: EncryptedFile;
  readonly receivedAt: number;
}

export interface AcceptedInvite {
  readonly roomId: string;
  readonly inviter: string;
  readonly at: number;
}

interface State {
  bundles: PendingBundle[];
  accepted: AcceptedInvite[];
}

function parseState(v: unknown): State {
  const state: State = { bundles: [], accepted: [] };
  if (!isRecord(v)) return state;
  for (const b of Array.isArray(v.bundles) ? v.bundles : []) {
    if (
      isRecord(b) &&
      isId(b.roomId) &&
      isId(b.sender) &&
      isId(b.senderKey) &&
      isEncryptedFile(b.file) &&
      // Dropped if an older Keyroom stored it with a URL longer than we now take.
      isBundleUrl(b.file.url) &&
      typeof b.receivedAt === "number"
    ) {
      state.bundles.push({
        roomId: b.roomId,
        sender: b.sender,
        senderKey: b.senderKey,
        file: b.file,
        receivedAt: b.receivedAt,
      });
    }
  }
  for (const a of Array.isArray(v.accepted) ? v.accepted : []) {
    if (isRecord(a) && isId(a.roomId) && isId(a.inviter) && typeof a.at === "number") {
      state.accepted.push({ roomId: a.roomId, inviter: a.inviter, at: a.at });
    }
  }
  return state;
}

/** Reads, changes and writes the state inside one machine step. */
export class HistorySharingState {
  readonly #ctx: MachineContext;

  constructor(ctx: MachineContext) {
    this.#ctx = ctx;
  }

  async #load(): Promise<State> {
    const unsaved = this.#ctx.tx.customValues?.[CUSTOM_KEY];
    return parseState(unsaved !== undefined ? unsaved : await this.#ctx.store.getCustomValue(CUSTOM_KEY));
  }

  #save(state: State): void {
    const now = this.#ctx.now();
    const fresh = (t: number) => now - t < BUNDLE_ACCEPT_WINDOW_MS;
    const accepted = state.accepted.filter((a) => fresh(a.at)).slice(-MAX_ACCEPTED_INVITES);
    // Past the bound, others' bundles go first (oldest first): a flood of them must not push out
    // the inviter's bundle for a room we joined, which may wait (device list, identity change).
    const ready = (b: PendingBundle) => accepted.some((a) => a.roomId === b.roomId && a.inviter === b.sender);
    let excess = state.bundles.length - MAX_PENDING_BUNDLES;
    const bundles = state.bundles.filter((b) => excess <= 0 || ready(b) || excess-- <= 0);
    const value = { bundles: bundles.slice(-MAX_PENDING_BUNDLES), accepted };
    this.#ctx.tx.customValues = {
      ...this.#ctx.tx.customValues,
      [CUSTOM_KEY]: value as unknown as JsonValue,
    };
  }

  now(): number {
    return this.#ctx.now();
  }

  /** A bundle arrived over Olm: remembered (replacing an older one from the same user for the room). */
  async addBundle(bundle: PendingBundle): Promise<void> {
    const state = await this.#load();
    state.bundles = state.bundles.filter((b) => !(b.roomId === bundle.roomId && b.sender === bundle.sender));
    state.bundles.push(bundle);
    this.#save(state);
  }

  /** We accepted `inviter`'s invite to `roomId` now. */
  async inviteAccepted(roomId: string, inviter: string): Promise<void> {
    const state = await this.#load();
    state.accepted = state.accepted.filter((a) => a.roomId !== roomId);
    state.accepted.push({ roomId, inviter, at: this.#ctx.now() });
    this.#save(state);
  }

  /** Bundles to download and import now: from the inviter of a room, within the window. */
  async ready(): Promise<PendingBundle[]> {
    const { bundles, accepted } = await this.#load();
    const now = this.#ctx.now();
    return bundles.filter((b) =>
      accepted.some(
        (a) => a.roomId === b.roomId && a.inviter === b.sender && now - a.at < BUNDLE_ACCEPT_WINDOW_MS,
      ),
    );
  }

  /** A bundle was imported, or cannot be (expired media, malformed): forgotten. */
  async done(roomId: string, sender: string): Promise<void> {
    const state = await this.#load();
    state.bundles = state.bundles.filter((b) => !(b.roomId === roomId && b.sender === sender));
    this.#save(state);
  }
}
