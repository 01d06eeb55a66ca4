/**
 * Validation of incoming verification event contents, once, at the edge: every field a step reads
 * is checked here, so the flows only ever see typed values. A content that fails is reported as
 * `undefined` and the flow cancels with `m.invalid_message` (or ignores it, when no flow owns it).
 */

import { canonicalJson } from "../../crypto/json/index.ts";
import { isRecord } from "../../wire/json.ts";
import * as z from "../../wire/zod.ts";
import { idSchema, MAX_ID_LENGTH } from "../limits.ts";
import { MAX_CANCEL_REASON_LENGTH, MAX_LIST_ENTRIES } from "./constants.ts";

/** With the `u` flag this matches only unpaired surrogates. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const wellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);
/** Well-formed Unicode only: a lone surrogate has no UTF-8 form and breaks canonical JSON. */
const text = z.string().check(z.refine(wellFormed, "not well-formed Unicode"));
const id = idSchema.check(z.refine(wellFormed, "not well-formed Unicode"));
const list = z.array(text.check(z.maxLength(MAX_ID_LENGTH))).check(z.maxLength(MAX_LIST_ENTRIES));
/** A 32-byte key in unpadded base64. */
const key32 = z.string().check(z.regex(/^[A-Za-z0-9+/]{43}$/));

const requestSchema = z.object({
  from_device: id,
  methods: list,
  timestamp: z.optional(z.number().check(z.int())),
});
const readySchema = z.object({ from_device: id, methods: list });
const startSchema = z.object({
  from_device: id,
  method: text.check(z.maxLength(MAX_ID_LENGTH)),
  key_agreement_protocols: z.optional(list),
  hashes: z.optional(list),
  message_authentication_codes: z.optional(list),
  short_authentication_string: z.optional(list),
  secret: z.optional(z.string().check(z.maxLength(1024))),
});
const acceptSchema = z.object({
  key_agreement_protocol: text.check(z.maxLength(MAX_ID_LENGTH)),
  hash: text.check(z.maxLength(MAX_ID_LENGTH)),
  message_authentication_code: text.check(z.maxLength(MAX_ID_LENGTH)),
  short_authentication_string: list,
  commitment: z.string().check(z.regex(/^[A-Za-z0-9+/]{43}$/)),
});
const keySchema = z.object({ key: key32 });
const macSchema = z.object({
  mac: z
    .record(id, z.string().check(z.maxLength(128)))
    .check(z.refine((m) => Object.keys(m).length <= MAX_LIST_ENTRIES && Object.keys(m).length > 0)),
  keys: z.string().check(z.maxLength(128)),
});
const cancelSchema = z.object({
  code: z.string().check(z.maxLength(MAX_ID_LENGTH)),
  reason: z.optional(z.string()),
});

export type RequestContent = z.infer<typeof requestSchema>;
export type ReadyContent = z.infer<typeof readySchema>;
export type StartContent = z.infer<typeof startSchema>;
export type AcceptContent = z.infer<typeof acceptSchema>;
export type KeyContent = z.infer<typeof keySchema>;
export type MacContent = z.infer<typeof macSchema>;
export interface CancelContent {
  readonly code: string;
  readonly reason: string;
}

function parse<T>(schema: z.ZodMiniType<T>, content: unknown): T | undefined {
  const r = schema.safeParse(content);
  return r.success ? r.data : undefined;
}

export const parseRequest = (c: unknown) => parse(requestSchema, c);
export const parseReady = (c: unknown) => parse(readySchema, c);
/** The accept's commitment covers the start's canonical JSON: a start without one (a float, a lone surrogate) is malformed. */
export const parseStart = (c: unknown) => (hasCanonicalForm(c) ? parse(startSchema, c) : undefined);
export const parseAccept = (c: unknown) => parse(acceptSchema, c);
export const parseKey = (c: unknown) => parse(keySchema, c);
export const parseMac = (c: unknown) => parse(macSchema, c);

function hasCanonicalForm(c: unknown): boolean {
  try {
    canonicalJson(c);
    return true;
  } catch {
    return false;
  }
}

export function parseCancel(c: unknown): CancelContent | undefined {
  const r = parse(cancelSchema, c);
  if (r === undefined) return undefined;
  const reason = (r.reason ?? "").slice(0, MAX_CANCEL_REASON_LENGTH);
  return { code: r.code, reason: wellFormed(reason) ? reason : "" };
}

/** The flow a to-device event belongs to: its `transaction_id`. */
export function toDeviceFlowId(content: Record<string, unknown>): string | undefined {
  const txn = content.transaction_id;
  return typeof txn === "string" && id.safeParse(txn).success ? txn : undefined;
}

/** The flow a room event belongs to: the request event its `m.reference` relation points at. */
export function roomFlowId(content: Record<string, unknown>): string | undefined {
  const rel = content["m.relates_to"];
  if (!isRecord(rel) || rel.rel_type !== "m.reference") return undefined;
  const target = rel.event_id;
  return typeof target === "string" && id.safeParse(target).success ? target : undefined;
}

/** A Matrix user ID as far as we need to trust one (the `to` of an in-room request). */
export function isUserId(value: unknown): value is string {
  return typeof value === "string" && value.startsWith("@") && id.safeParse(value).success;
}
