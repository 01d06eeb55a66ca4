/**
 * Test support (not exported): two verification machines wired back to back, with a clock, key
 * directories and a hook to drop, delay or tamper with events in flight.
 */
import { encodeBase64, randomBytes } from "../../../crypto/primitives/index.ts";
import type { VerificationEnv } from "../env.ts";
import type { VerificationMessage } from "../events.ts";
import { VerificationMachine } from "../machine.ts";

export const key32 = (): string => encodeBase64(randomBytes(32));

export class Side {
  readonly machine = new VerificationMachine();
  readonly devices = new Map<string, string>();
  readonly masters = new Map<string, string>();
  ownMasterTrusted = false;
  readonly ed25519 = key32();

  constructor(
    readonly userId: string,
    readonly deviceId: string,
  ) {}

  get env(): VerificationEnv {
    return {
      userId: this.userId,
      deviceId: this.deviceId,
      ed25519: this.ed25519,
      deviceKey: (u, d) => this.devices.get(`${u}|${d}`),
      masterKey: (u) => this.masters.get(u),
      ownMasterTrusted: this.ownMasterTrusted,
    };
  }

  know(other: Side): void {
    this.devices.set(`${other.userId}|${other.deviceId}`, other.ed25519);
  }
}

/** What a test may do with an event in flight: return it (maybe changed), or undefined to drop it. */
export type Tamper = (m: VerificationMessage, from: Side) => VerificationMessage | undefined;

export class Pair {
  now = 1_700_000_000_000;
  #eventCounter = 0;
  readonly log: { from: string; type: string; content: Record<string, unknown> }[] = [];

  constructor(
    readonly a: Side,
    readonly b: Side,
    readonly roomId = "!dm:example.org",
  ) {}

  static make(opts: { sameUser?: boolean; knowKeys?: boolean } = {}): Pair {
    const a = new Side("@alice:example.org", "ALICEDEV");
    const b = new Side(opts.sameUser ? "@alice:example.org" : "@bob:example.org", "BOBDEV");
    if (opts.knowKeys !== false) {
      a.know(b);
      b.know(a);
    }
    return new Pair(a, b);
  }

  other(s: Side): Side {
    return s === this.a ? this.b : this.a;
  }

  /** Moves events back and forth until both sides are quiet. */
  deliver(tamper?: Tamper): void {
    for (let round = 0; round < 100; round++) {
      let moved = false;
      for (const from of [this.a, this.b]) {
        for (const raw of from.machine.takeOutgoing()) {
          const m = tamper === undefined ? raw : tamper(raw, from);
          if (m === undefined) continue;
          moved = true;
          this.inject(from, m);
        }
      }
      if (!moved) return;
    }
    throw new Error("the machines did not go quiet");
  }

  /** Hands one event to the other side as if it came from `from`. */
  inject(from: Side, m: VerificationMessage, senderDevice?: string): void {
    const to = this.other(from);
    this.log.push({ from: from.deviceId, type: m.eventType, content: m.content });
    if (m.kind === "to_device") {
      if (m.userId !== to.userId || !m.deviceIds.includes(to.deviceId)) return;
      to.machine.receiveToDevice(
        { type: m.eventType, sender: from.userId, content: m.content, senderDevice },
        to.env,
        this.now,
      );
    } else {
      to.machine.receiveRoomEvent(
        {
          roomId: m.roomId,
          eventId: `$event${++this.#eventCounter}`,
          sender: from.userId,
          type: m.eventType,
          content: m.content,
          originServerTs: this.now,
          senderDevice,
        },
        to.env,
        this.now,
      );
    }
  }

  /** An in-room request from `from`, as the client sends it (the event ID comes back from the server). */
  roomRequest(from: Side): string {
    const to = this.other(from);
    const content = from.machine.roomRequestContent(to.userId, from.env);
    const eventId = `$request${++this.#eventCounter}`;
    const key = from.machine.roomRequestSent(this.roomId, eventId, to.userId, from.env, this.now);
    to.machine.receiveRoomEvent(
      {
        roomId: this.roomId,
        eventId,
        sender: from.userId,
        type: "m.room.message",
        content,
        originServerTs: this.now,
      },
      to.env,
      this.now,
    );
    return key;
  }

  /** Alice requests to-device, Bob accepts, both delivered: the flow's keys on each side, at "ready". */
  requestAccepted(): { ka: string; kb: string } {
    this.a.machine.requestToDevice(this.b.userId, [this.b.deviceId], this.a.env, this.now);
    this.deliver();
    const kb = this.b.machine.takeIncoming()[0]?.key as string;
    this.b.machine.accept(kb, this.b.env, this.now);
    this.deliver();
    return { ka: this.flowOf(this.a), kb };
  }

  /** The key under which `side` holds its only flow. */
  flowOf(side: Side): string {
    const flows = side.machine.list();
    if (flows.length !== 1) throw new Error(`${side.deviceId} holds ${flows.length} flows`);
    return (flows[0] as { key: string }).key;
  }
}
