/**
 * One SAS exchange (`m.sas.v1`) inside a verification flow: start → accept (commitment) → key ×2
 * → the user compares → mac ×2. It sends through its flow and reports a cancel code or the verified
 * key IDs; the flow owns the framework around it (request, ready, done, cancel, timeouts).
 */
import { constantTimeEqual, utf8Encode } from "../../crypto/primitives/index.ts";
import { Sas, type SasEmoji, sasDecimals, sasEmoji } from "../../crypto/sas/index.ts";
import {
  type CancelCode,
  EVENT_ACCEPT,
  EVENT_KEY,
  EVENT_MAC,
  EVENT_START,
  HASH,
  KEY_AGREEMENT,
  METHOD_SAS,
  SAS_MAC_PREFERENCE,
  SAS_METHODS,
} from "./constants.ts";
import {
  type AcceptContent,
  type MacContent,
  parseAccept,
  parseKey,
  parseMac,
  type StartContent,
} from "./content.ts";
import { checkMac, type MacParties, macContent, sasBytes, sasCommitment } from "./sas-crypto.ts";

/** What a SAS step needs from its flow. */
export interface SasHost {
  readonly flowId: string;
  readonly ourUser: string;
  readonly ourDevice: string;
  readonly otherUser: string;
  readonly otherDevice: string;
  /** Sends one event of the flow; returns the full content as sent (with its flow ID). */
  send(type: string, content: Record<string, unknown>): Record<string, unknown>;
}

export type SasStage =
  /** We sent the start and wait for their accept. */
  | "awaiting_accept"
  /** They started without a request: our user has to accept. */
  | "accept_pending"
  /** Keys are being exchanged. */
  | "awaiting_key"
  /** Both keys are known: the short string can be compared. */
  | "keys_exchanged"
  /** Our user confirmed; we sent our MAC and wait for theirs. */
  | "confirmed"
  /** Their MAC checked out and ours was sent. */
  | "verified";

export type SasStep =
  | { readonly kind: "ok" }
  | { readonly kind: "cancel"; readonly code: CancelCode; readonly reason: string }
  | { readonly kind: "verified"; readonly keyIds: readonly string[] };

const OK: SasStep = { kind: "ok" };
const cancel = (code: CancelCode, reason: string): SasStep => ({ kind: "cancel", code, reason });

/** The SAS options of a start we send. */
export function sasStartContent(ourDevice: string): Record<string, unknown> {
  return {
    from_device: ourDevice,
    method: METHOD_SAS,
    key_agreement_protocols: [KEY_AGREEMENT],
    hashes: [HASH],
    message_authentication_codes: [...SAS_MAC_PREFERENCE],
    short_authentication_string: [...SAS_METHODS],
  };
}

export class SasFlow {
  readonly #host: SasHost;
  readonly #sas = Sas.create();
  readonly #weStarted: boolean;
  /** The start as sent or received, with its flow ID: the commitment covers it. */
  readonly #start: Record<string, unknown>;
  /** Their device's Ed25519 key when the exchange began: a change mid-flow fails it. */
  readonly #theirDeviceKey: string;
  #stage: SasStage;
  #macMethod = "";
  #sasMethods: readonly string[] = [];
  #commitment: string | undefined;
  #bytes: Uint8Array | undefined;
  #heldMac: MacContent | undefined;

  private constructor(
    host: SasHost,
    weStarted: boolean,
    start: Record<string, unknown>,
    theirKey: string,
    stage: SasStage,
  ) {
    this.#host = host;
    this.#weStarted = weStarted;
    this.#start = start;
    this.#theirDeviceKey = theirKey;
    this.#stage = stage;
  }

  /** We start: sends `m.key.verification.start`. */
  static begin(host: SasHost, theirDeviceKey: string): SasFlow {
    const sent = host.send(EVENT_START, sasStartContent(host.ourDevice));
    return new SasFlow(host, true, sent, theirDeviceKey, "awaiting_accept");
  }

  /**
   * They started. Picks the options (or the cancel code when none fit); with `acceptNow` the
   * accept goes out at once (a request both sides agreed to), else it waits for `accept()`.
   */
  static answer(
    host: SasHost,
    start: StartContent,
    raw: Record<string, unknown>,
    theirDeviceKey: string,
    acceptNow: boolean,
  ): SasFlow | SasStep {
    if (
      !(start.key_agreement_protocols ?? []).includes(KEY_AGREEMENT) ||
      !(start.hashes ?? []).includes(HASH)
    ) {
      return cancel("m.unknown_method", "no common key agreement protocol or hash");
    }
    const macs = start.message_authentication_codes ?? [];
    const mac = SAS_MAC_PREFERENCE.find((m) => macs.includes(m));
    const methods = SAS_METHODS.filter((m) => (start.short_authentication_string ?? []).includes(m));
    if (mac === undefined || !methods.includes("decimal")) {
      return cancel("m.unknown_method", "no common MAC or short authentication string method");
    }
    const flow = new SasFlow(host, false, raw, theirDeviceKey, "accept_pending");
    flow.#macMethod = mac;
    flow.#sasMethods = methods;
    if (acceptNow) flow.accept();
    return flow;
  }

  get stage(): SasStage {
    return this.#stage;
  }
  get weStarted(): boolean {
    return this.#weStarted;
  }
  get macMethod(): string {
    return this.#macMethod;
  }
  /**
   * Whether the flow waits on the other device itself (the between-events timeout); not while
   * either user compares the strings, which the whole-exchange timeout bounds.
   */
  get waitingForThem(): boolean {
    return this.#stage === "awaiting_accept" || this.#stage === "awaiting_key";
  }

  /** Sends our accept with its commitment. */
  accept(): SasStep {
    if (this.#stage !== "accept_pending") return OK;
    this.#host.send(EVENT_ACCEPT, {
      method: METHOD_SAS,
      key_agreement_protocol: KEY_AGREEMENT,
      hash: HASH,
      message_authentication_code: this.#macMethod,
      short_authentication_string: [...this.#sasMethods],
      commitment: sasCommitment(this.#sas.publicKey, this.#start),
    });
    this.#stage = "awaiting_key";
    return OK;
  }

  emoji(): SasEmoji[] | undefined {
    return this.#bytes !== undefined && this.#sasMethods.includes("emoji")
      ? sasEmoji(this.#bytes)
      : undefined;
  }
  decimals(): [number, number, number] | undefined {
    return this.#bytes === undefined ? undefined : sasDecimals(this.#bytes);
  }

  /** One event of the exchange; `currentKey` is their device's key as we know it now. */
  receive(type: string, content: Record<string, unknown>, keys: MacKeys): SasStep {
    switch (type) {
      case EVENT_ACCEPT:
        return this.#receiveAccept(content);
      case EVENT_KEY:
        return this.#receiveKey(content);
      case EVENT_MAC: {
        if (this.#stage !== "keys_exchanged" && this.#stage !== "confirmed") {
          return cancel("m.unexpected_message", "a MAC before the keys were exchanged");
        }
        const mac = parseMac(content);
        if (mac === undefined) return cancel("m.invalid_message", "malformed m.key.verification.mac");
        if (this.#heldMac !== undefined) return cancel("m.unexpected_message", "a second MAC");
        this.#heldMac = mac;
        return this.#stage === "confirmed" ? this.#checkMac(keys) : OK;
      }
      default:
        return cancel("m.unexpected_message", `${type} is not expected during SAS`);
    }
  }

  #receiveAccept(content: Record<string, unknown>): SasStep {
    if (!this.#weStarted || this.#stage !== "awaiting_accept") {
      return cancel("m.unexpected_message", "an accept we did not ask for");
    }
    const accept: AcceptContent | undefined = parseAccept(content);
    if (accept === undefined) return cancel("m.invalid_message", "malformed m.key.verification.accept");
    const methods = accept.short_authentication_string.filter((m) => SAS_METHODS.includes(m));
    if (
      accept.key_agreement_protocol !== KEY_AGREEMENT ||
      accept.hash !== HASH ||
      !SAS_MAC_PREFERENCE.includes(accept.message_authentication_code) ||
      !methods.includes("decimal")
    ) {
      return cancel("m.unknown_method", "the accept chose a method we did not offer");
    }
    this.#macMethod = accept.message_authentication_code;
    this.#sasMethods = methods;
    this.#commitment = accept.commitment;
    this.#host.send(EVENT_KEY, { key: this.#sas.publicKey });
    this.#stage = "awaiting_key";
    return OK;
  }

  #receiveKey(content: Record<string, unknown>): SasStep {
    if (this.#stage !== "awaiting_key") return cancel("m.unexpected_message", "a key out of order");
    const key = parseKey(content);
    if (key === undefined) return cancel("m.invalid_message", "malformed m.key.verification.key");
    if (this.#weStarted) {
      const expected = utf8Encode(sasCommitment(key.key, this.#start));
      if (this.#commitment === undefined || !constantTimeEqual(expected, utf8Encode(this.#commitment))) {
        return cancel("m.mismatched_commitment", "their key does not match the commitment of their accept");
      }
    }
    try {
      this.#sas.setTheirPublicKey(key.key);
    } catch {
      return cancel("m.key_mismatch", "their ephemeral key was refused");
    }
    if (!this.#weStarted) this.#host.send(EVENT_KEY, { key: this.#sas.publicKey });
    const h = this.#host;
    const ours = { user: h.ourUser, device: h.ourDevice, key: this.#sas.publicKey };
    const theirs = { user: h.otherUser, device: h.otherDevice, key: key.key };
    const [s, a] = this.#weStarted ? [ours, theirs] : [theirs, ours];
    this.#bytes = sasBytes(this.#sas, {
      startUser: s.user,
      startDevice: s.device,
      startKey: s.key,
      acceptUser: a.user,
      acceptDevice: a.device,
      acceptKey: a.key,
      flowId: h.flowId,
    });
    this.#stage = "keys_exchanged";
    return OK;
  }

  /** Our user says the strings match: sends our MAC, then checks theirs if it came already. */
  confirm(keys: MacKeys): SasStep {
    if (this.#stage !== "keys_exchanged") return cancel("m.unexpected_message", "nothing to confirm");
    const h = this.#host;
    const parties: MacParties = {
      senderUser: h.ourUser,
      senderDevice: h.ourDevice,
      receiverUser: h.otherUser,
      receiverDevice: h.otherDevice,
      flowId: h.flowId,
    };
    this.#host.send(EVENT_MAC, macContent(this.#sas, this.#macMethod, parties, keys.ours));
    this.#stage = "confirmed";
    return this.#heldMac === undefined ? OK : this.#checkMac(keys);
  }

  #checkMac(keys: MacKeys): SasStep {
    const mac = this.#heldMac as MacContent;
    const h = this.#host;
    if (keys.theirDeviceKey !== this.#theirDeviceKey) {
      return cancel("m.key_mismatch", "their device key changed during the verification");
    }
    const parties: MacParties = {
      senderUser: h.otherUser,
      senderDevice: h.otherDevice,
      receiverUser: h.ourUser,
      receiverDevice: h.ourDevice,
      flowId: h.flowId,
    };
    // A device ID that is also one of their cross-signing key IDs (the key/device confusion of
    // Albrecht et al. 2022): one MAC would then prove both the device key and the master key.
    const deviceKeyId = `ed25519:${h.otherDevice}`;
    if (Object.hasOwn(keys.theirs, deviceKeyId)) {
      return cancel("m.key_mismatch", "their device ID is the ID of a cross-signing key");
    }
    const known: Record<string, string> = { ...keys.theirs, [deviceKeyId]: this.#theirDeviceKey };
    const result = checkMac(this.#sas, this.#macMethod, parties, mac, known);
    if (!result.ok) return cancel("m.key_mismatch", result.reason);
    this.#stage = "verified";
    return { kind: "verified", keyIds: result.verified };
  }
}

/** The keys of a MAC step: what we MAC for them, and what we know of theirs. */
export interface MacKeys {
  /** Key ID → key we ask them to verify (our device key, our master key). */
  readonly ours: Readonly<Record<string, string>>;
  /** Their keys we know besides the device key (their master key). */
  readonly theirs: Readonly<Record<string, string>>;
  /** Their device's Ed25519 key as we know it now. */
  readonly theirDeviceKey: string | undefined;
}
