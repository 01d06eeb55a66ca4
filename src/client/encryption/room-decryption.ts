// Decrypting room events in the client's encryption driver: one event, or a sync response's
// timelines in one batch, through the engine, with each room's sender requirement, and a second
// pass once the devices of senders new to us are fetched. `ClientCrypto` runs these under the
// store's lease.
import { E2eeError } from "../../e2ee/errors.ts";
import type { RoomEventDecryption, SenderRequirement } from "../../e2ee/index.ts";
import type { OlmMachine } from "../../e2ee/machine.ts";
import type { ClientEvent } from "../../wire/index.ts";
import type { Room } from "../rooms/room.ts";
import type { DecryptionResult } from "../sync/hooks.ts";
import { decryptedParts, undecryptable } from "./decrypted-events.ts";
import type { OutgoingRequestLoop } from "./outgoing.ts";
import type { RefusedVerificationEvents } from "./refused-verification.ts";
import type { RoomEncryption } from "./room-encryption.ts";

export interface RoomDecryptionParts {
  readonly machine: OlmMachine;
  /** Each room's recorded trust requirements (the sender requirement). */
  readonly rooms: RoomEncryption;
  /** Sends the key queries for senders new to us. */
  readonly loop: OutgoingRequestLoop;
  /** Verification events of senders the requirement refuses, held for the verification flow. */
  readonly refusedVerification: RefusedVerificationEvents;
}

/** The outcome for the client; a refused sender's verification event is held for the flow. */
function result(parts: RoomDecryptionParts, o: RoomEventDecryption, raw: ClientEvent): DecryptionResult {
  if (o.ok) return { ok: true, ...decryptedParts(o.event, raw) };
  if (o.verificationEvent !== undefined) parts.refusedVerification.hold(o.verificationEvent);
  return undecryptable(o.error);
}

/** `decryptRoomEvent` for a room's timeline, in one engine step (and one more for first contacts). */
export async function decryptRoomEvents(
  parts: RoomDecryptionParts,
  room: Room,
  events: readonly ClientEvent[],
): Promise<DecryptionResult[]> {
  const [results = []] = await decryptTimelines(parts, [{ roomId: room.roomId, events }]);
  return results;
}

/**
 * `decryptRoomEvents` for every timeline of a sync response at once: one engine step for all the
 * rooms sharing a sender requirement (most often all of them), and one more for first contacts.
 * Results per timeline, in the order of its events.
 */
export async function decryptTimelines(
  parts: RoomDecryptionParts,
  timelines: readonly { readonly roomId: string; readonly events: readonly ClientEvent[] }[],
): Promise<DecryptionResult[][]> {
  const out: DecryptionResult[][] = timelines.map(() => []);
  // The rooms' events, grouped by the rooms' sender requirement (an engine call takes one).
  const groups = new Map<SenderRequirement | undefined, { timeline: number; event: ClientEvent }[]>();
  for (let t = 0; t < timelines.length; t++) {
    const { roomId, events } = timelines[t] as (typeof timelines)[number];
    if (events.length === 0) continue;
    let requirement: SenderRequirement | undefined;
    try {
      requirement = (await parts.rooms.trustOf(roomId)).senderRequirement;
    } catch (e) {
      if (!(e instanceof E2eeError)) throw e;
      out[t] = events.map(() => failed(e));
      continue;
    }
    const group = groups.get(requirement) ?? [];
    groups.set(requirement, group);
    for (const event of events) group.push({ timeline: t, event });
  }
  for (const [requirement, group] of groups) {
    const batch = group.map(({ timeline, event }) => ({
      event,
      roomId: (timelines[timeline] as (typeof timelines)[number]).roomId,
    }));
    const results = await decryptBatch(parts, batch, requirement);
    group.forEach(({ timeline }, i) => {
      (out[timeline] as DecryptionResult[]).push(results[i] as DecryptionResult);
    });
  }
  return out;
}

/** One engine call for these events (and one more for first contacts); results in their order. */
async function decryptBatch(
  parts: RoomDecryptionParts,
  batch: readonly { event: ClientEvent; roomId: string }[],
  requirement: SenderRequirement | undefined,
): Promise<DecryptionResult[]> {
  const { machine } = parts;
  try {
    const opts = requirement === undefined ? {} : { senderRequirement: requirement };
    const outcomes = await machine.tryDecryptRoomEvents(batch, opts);
    // First contact, as in `decryptRoomEvent`: fetch the unknown senders' devices at once and
    // judge those events again.
    const unknown = outcomes.flatMap((o, i) => (o.ok && o.event.trust === "unknown_device" ? [i] : []));
    if (unknown.length > 0) {
      await machine.updateTrackedUsers([
        ...new Set(unknown.map((i) => (batch[i] as (typeof batch)[number]).event.sender)),
      ]);
      await parts.loop.run();
      const again = await machine.tryDecryptRoomEvents(
        unknown.map((i) => batch[i] as (typeof batch)[number]),
        opts,
      );
      unknown.forEach((i, j) => {
        outcomes[i] = again[j] as RoomEventDecryption;
      });
    }
    return outcomes.map((o, i) => result(parts, o, (batch[i] as (typeof batch)[number]).event));
  } catch (e) {
    // The engine itself failed (closed, its store unusable): the events stay undecrypted.
    if (e instanceof E2eeError) return batch.map(() => failed(e));
    throw e;
  }
}

function failed(e: E2eeError): DecryptionResult {
  return { ok: false, code: e.code, reason: e.message };
}

export async function decryptRoomEvent(
  parts: RoomDecryptionParts,
  room: Room,
  event: ClientEvent,
): Promise<DecryptionResult> {
  const { machine } = parts;
  try {
    const requirement = (await parts.rooms.trustOf(room.roomId)).senderRequirement;
    const opts = requirement === undefined ? {} : { senderRequirement: requirement };
    // The engine keeps the events whose key may still come and hands them back when it does.
    let outcome = await machine.tryDecryptRoomEvent(event, room.roomId, opts);
    if (outcome.ok && outcome.event.trust === "unknown_device") {
      // First contact: the sender's device keys may not be fetched yet (the query for a new room
      // member goes out after this sync's events). Fetch them now and judge the sender with them,
      // rather than report a device as unknown that is merely new to us.
      await machine.updateTrackedUsers([event.sender]);
      await parts.loop.run();
      outcome = await machine.tryDecryptRoomEvent(event, room.roomId, opts);
    }
    return result(parts, outcome, event);
  } catch (e) {
    // The engine itself failed (closed, its store unusable): the event stays undecrypted.
    if (e instanceof E2eeError) return { ok: false, code: e.code, reason: e.message };
    throw e;
  }
}
