// Typed, versioned bot state in Matrix account data: global (user account data) and per room (room
// account data), so a bot moved to another machine finds its state on the server. Each key is one
// account-data event `dev.keyroom.bot.state.<key>` holding `{ version, value }`. Stored values are
// network input (any of the account's clients can write them): each is checked on read, and
// migrated when its version is older than the definition's.
import type { JsonObject, MatrixClient } from "../index.ts";

export const STATE_EVENT_PREFIX = "dev.keyroom.bot.state.";
/** Largest state value (JSON text): servers cap event sizes near 64 KiB. Bigger data: `bot.local`. */
export const MAX_STATE_BYTES = 60 * 1024;
const KEY = /^[A-Za-z0-9_.-]{1,100}$/;

export interface StateDefinition<T> {
  /** Bumped when the value's shape changes; older stored values go through `migrate`. */
  version: number;
  /** The value when nothing is stored (or a stored value fails `validate`, or it or `migrate` throws). */
  initial: () => T;
  /** Whether a stored (or migrated) value has the right shape. Default: accepts any JSON. */
  validate?: (value: unknown) => value is T;
  /** Turns a value stored at an older `fromVersion` into the current shape. */
  migrate?: (value: unknown, fromVersion: number) => T;
}

export class StateError extends Error {
  override readonly name = "StateError";
}

type Host = Pick<MatrixClient, "getAccountData" | "setAccountData" | "getRoom" | "setRoomAccountData">;

/** One key of state, global or in one room. Writes are serialized, so `update` never loses one. */
export class StateSlot<T> {
  #queue: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly host: Host,
    private readonly cache: Map<string, JsonObject>,
    readonly key: string,
    private readonly def: StateDefinition<T>,
    readonly roomId: string | undefined,
  ) {}

  get #type(): string {
    return STATE_EVENT_PREFIX + this.key;
  }
  get #cacheKey(): string {
    return `${this.roomId ?? ""}\u0000${this.key}`;
  }

  #stored(): JsonObject | undefined {
    const cached = this.cache.get(this.#cacheKey);
    if (cached !== undefined) return cached;
    return this.roomId === undefined
      ? this.host.getAccountData(this.#type)
      : this.host.getRoom(this.roomId)?.getAccountData(this.#type);
  }

  /** The current value (the initial one when none is stored or the stored one is unusable). */
  get(): T {
    const stored = this.#stored();
    if (stored === undefined || !("value" in stored)) return this.def.initial();
    const version = typeof stored.version === "number" ? stored.version : 0;
    let value: unknown = stored.value;
    if (version > this.def.version) {
      throw new StateError(`state "${this.key}" was written by a newer version (${version}) of this bot`);
    }
    // What is stored is network input: a value its migration or check throws on is as unusable
    // as one the check refuses (else the slot could never be read nor written again).
    try {
      if (version < this.def.version) {
        if (this.def.migrate === undefined) return this.def.initial();
        value = this.def.migrate(value, version);
      }
      if (this.def.validate !== undefined && !this.def.validate(value)) return this.def.initial();
    } catch {
      return this.def.initial();
    }
    return value as T;
  }

  set(value: T): Promise<void> {
    return this.#serial(() => this.#write(value));
  }

  /** Reads, applies `fn` and writes, serialized with other writes of this slot. Returns the new value. */
  update(fn: (value: T) => T): Promise<T> {
    return this.#serial(async () => {
      const next = fn(this.get());
      await this.#write(next);
      return next;
    });
  }

  async #write(value: T): Promise<void> {
    const content: JsonObject = {
      version: this.def.version,
      value: asStoredJson(value),
    };
    if (Buffer.byteLength(JSON.stringify(content)) > MAX_STATE_BYTES) {
      throw new StateError(
        `state "${this.key}" is larger than ${MAX_STATE_BYTES} bytes: keep it in bot.local`,
      );
    }
    if (this.roomId === undefined) await this.host.setAccountData(this.#type, content);
    else await this.host.setRoomAccountData(this.roomId, this.#type, content);
    this.cache.set(this.#cacheKey, content);
  }

  #serial<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/** The state keys a bot defined, and their slots. */
export class BotState {
  readonly #defs = new Map<string, StateDefinition<unknown>>();
  readonly #slots = new Map<string, StateSlot<unknown>>();
  /** Values written by this process, until sync brings them back (room account data is not cached by the client). */
  readonly #cache = new Map<string, JsonObject>();
  constructor(private readonly host: Host) {}

  /** Defines (or looks up) a state key. The same key must always be defined the same way. */
  define<T>(key: string, def: StateDefinition<T>): StateHandle<T> {
    if (!KEY.test(key)) throw new StateError(`state key "${key}" must be 1-100 of A-Z a-z 0-9 _ . -`);
    this.#defs.set(key, def as StateDefinition<unknown>);
    return {
      global: () => this.#slot(key, undefined) as StateSlot<T>,
      room: (roomId: string) => this.#slot(key, roomId) as StateSlot<T>,
    };
  }

  #slot(key: string, roomId: string | undefined): StateSlot<unknown> {
    const id = `${roomId ?? ""}\u0000${key}`;
    let slot = this.#slots.get(id);
    if (slot === undefined) {
      const def = this.#defs.get(key);
      if (def === undefined) throw new StateError(`state key "${key}" is not defined`);
      slot = new StateSlot(this.host, this.#cache, key, def, roomId);
      this.#slots.set(id, slot);
    }
    return slot;
  }

  /**
   * Drops the slots and written values this process keeps for `roomId` (the bot left it). The
   * room's state in account data stays: a slot for the room made later reads it from there.
   */
  forgetRoom(roomId: string): void {
    const prefix = `${roomId}\u0000`;
    for (const map of [this.#slots, this.#cache])
      for (const id of map.keys()) if (id.startsWith(prefix)) map.delete(id);
  }

  /** @internal For tests: slots and written values kept for rooms. */
  get roomEntries(): number {
    let n = 0;
    for (const map of [this.#slots, this.#cache])
      for (const id of map.keys()) if (!id.startsWith("\u0000")) n++;
    return n;
  }

  /** Copies every defined per-room key from `fromRoomId` to `toRoomId` (a room upgrade). Returns the keys copied. */
  async carry(fromRoomId: string, toRoomId: string): Promise<string[]> {
    const copied: string[] = [];
    for (const key of this.#defs.keys()) {
      const from = this.#slot(key, fromRoomId);
      const raw =
        this.#cache.get(`${fromRoomId}\u0000${key}`) ??
        this.host.getRoom(fromRoomId)?.getAccountData(STATE_EVENT_PREFIX + key);
      if (raw === undefined) continue;
      await this.#slot(key, toRoomId).set(from.get());
      copied.push(key);
    }
    return copied;
  }
}

export interface StateHandle<T> {
  /** The bot-wide value (user account data). */
  global(): StateSlot<T>;
  /** The value for one room (room account data). */
  room(roomId: string): StateSlot<T>;
}

/**
 * `value` as JSON carries it (what `JSON.stringify` keeps), with each lone surrogate in a string or
 * a key replaced by U+FFFD: state often holds a user's text, which may have one, and the client
 * refuses to send such content.
 */
function asStoredJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null), (_key, v: unknown) => {
    if (typeof v === "string") return v.toWellFormed();
    if (typeof v !== "object" || v === null || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.toWellFormed(), x]));
  });
}
