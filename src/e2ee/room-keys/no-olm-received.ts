/**
 * `m.no_olm` notices we received: a sender's device could not set up an Olm session with us, so
 * none of its room keys reached us. The spec (`m.room_key.withheld`) has the notice name no room
 * and no session (it is about the device) and lets the recipient "assume that this message applies
 * to all encrypted room messages sent before it receives the message": an event of that device
 * whose key we lack, sent before the notice came, fails as `WITHHELD` with code `m.no_olm` (as
 * matrix-js-sdk's legacy crypto reported it; matrix-rust-sdk drops such notices).
 *
 * Remembered by sending user and Curve25519 key, kept across restarts as one custom value of the
 * crypto store and read once per process. Anyone can send a notice in the clear naming keys we
 * cannot check yet, so at most {@link MAX_NO_OLM_RECEIVED_PER_SENDER} are kept per user and
 * {@link MAX_NO_OLM_RECEIVED} in all, the oldest forgotten first.
 */
import type { JsonValue } from "../../store/json.ts";
import { isId, reasonSchema } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";

/** `m.no_olm` notices remembered at most (oldest forgotten first). */
export const MAX_NO_OLM_RECEIVED = 1000;
/** `m.no_olm` notices remembered per sending user at most (their oldest forgotten first). */
export const MAX_NO_OLM_RECEIVED_PER_SENDER = 16;

const CUSTOM_KEY = "keyroom.no_olm_received.v1";

export interface NoOlmNotice {
  /** The user who sent the notice. */
  readonly sender: string;
  /** The Curve25519 key of the device that could not reach us. */
  readonly senderKey: string;
  /** When it arrived (our clock): events sent after it are not blamed on it. */
  readonly receivedAt: number;
  readonly reason?: string;
}

const nameOf = (sender: string, senderKey: string): string => JSON.stringify([sender, senderKey]);

function parse(v: unknown): Map<string, NoOlmNotice> {
  const out = new Map<string, NoOlmNotice>();
  if (!Array.isArray(v)) return out;
  for (const e of v) {
    if (typeof e !== "object" || e === null || Array.isArray(e)) continue;
    const { sender, senderKey, receivedAt, reason } = e as Record<string, unknown>;
    if (!isId(sender) || !isId(senderKey) || typeof receivedAt !== "number") continue;
    if (!Number.isSafeInteger(receivedAt)) continue;
    const notice: NoOlmNotice = {
      sender,
      senderKey,
      receivedAt,
      ...(reasonSchema.safeParse(reason).success ? { reason: reason as string } : {}),
    };
    out.delete(nameOf(sender, senderKey));
    out.set(nameOf(sender, senderKey), notice);
  }
  bound(out);
  return out;
}

/** Drops the oldest past the bounds, per sender first. */
function bound(notices: Map<string, NoOlmNotice>, sender?: string): void {
  if (sender !== undefined) {
    const theirs = [...notices].filter(([, n]) => n.sender === sender);
    for (const [key] of theirs.slice(0, Math.max(0, theirs.length - MAX_NO_OLM_RECEIVED_PER_SENDER))) {
      notices.delete(key);
    }
  }
  for (const key of notices.keys()) {
    if (notices.size <= MAX_NO_OLM_RECEIVED) break;
    notices.delete(key);
  }
}

/** Reads the record once and changes it inside machine steps (each change saved with its step). */
export class NoOlmReceived {
  readonly #ctx: MachineContext;
  /** The record as saved or about to be; the parts are rebuilt from the store after a failed step. */
  #notices: Map<string, NoOlmNotice> | undefined;

  constructor(ctx: MachineContext) {
    this.#ctx = ctx;
  }

  async #load(): Promise<Map<string, NoOlmNotice>> {
    this.#notices ??= parse(await this.#ctx.store.getCustomValue(CUSTOM_KEY));
    return this.#notices;
  }

  /** `sender`'s device owning `senderKey` told us it could not set up an Olm session with us. */
  async record(sender: string, senderKey: string, reason: string | undefined): Promise<void> {
    const notices = await this.#load();
    const key = nameOf(sender, senderKey);
    notices.delete(key); // re-inserted as the newest
    notices.set(key, {
      sender,
      senderKey,
      receivedAt: this.#ctx.now(),
      ...(reason !== undefined ? { reason } : {}),
    });
    bound(notices, sender);
    const value = [...notices.values()];
    this.#ctx.tx.customValues = { ...this.#ctx.tx.customValues, [CUSTOM_KEY]: value as unknown as JsonValue };
  }

  /** The notice `sender`'s device owning `senderKey` sent us, if any. */
  async from(sender: string, senderKey: string): Promise<NoOlmNotice | undefined> {
    return (await this.#load()).get(nameOf(sender, senderKey));
  }
}
