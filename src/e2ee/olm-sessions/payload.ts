/**
 * The plaintext inside an Olm to-device message (spec "m.olm.v1.curve25519-aes-sha2"): besides
 * the event, it names sender and recipient with their keys, so that a message cannot be replayed
 * to someone else or passed off as from another user.
 */
import { decodeBase64, encodeBase64 } from "../../crypto/primitives/index.ts";
import { MAX_EVENT_DEPTH, storableWithin } from "../../wire/json.ts";
import * as z from "../../wire/zod.ts";
import { OLM_ALGORITHM } from "../devices/device.ts";
import { idSchema, MAX_TO_DEVICE_CIPHERTEXT_BYTES } from "../limits.ts";

export interface OlmPayload {
  readonly type: string;
  readonly content: Record<string, unknown>;
  readonly sender: string;
  readonly sender_device?: string;
  readonly recipient: string;
  readonly recipient_keys: { ed25519: string };
  readonly keys: { ed25519: string };
  /** The sender's signed device keys (MSC4147); history-sharing bundles must carry them. */
  readonly sender_device_keys?: Readonly<Record<string, unknown>>;
}

const payloadSchema = z.object({
  type: z.string().check(z.minLength(1)),
  content: z.record(z.string(), z.unknown()),
  sender: idSchema,
  sender_device: z.optional(idSchema),
  recipient: idSchema,
  recipient_keys: z.object({ ed25519: idSchema }),
  keys: z.object({ ed25519: idSchema }),
  sender_device_keys: z.optional(z.record(z.string(), z.unknown())),
});

/** A parsed payload, or undefined for anything that is not one. */
export function parseOlmPayload(plaintext: string): OlmPayload | undefined {
  let json: unknown;
  try {
    json = JSON.parse(plaintext);
  } catch {
    return undefined;
  }
  if (!storableWithin(json, MAX_EVENT_DEPTH)) return undefined;
  const result = payloadSchema.safeParse(json);
  return result.success ? result.data : undefined;
}

const olmMessageSchema = z.object({ type: z.union([z.literal(0), z.literal(1)]), body: z.string() });

const olmContentSchema = z.object({
  algorithm: z.string(),
  sender_key: idSchema,
  ciphertext: z.record(z.string(), z.unknown()),
});

export interface OlmEncryptedContent {
  algorithm: typeof OLM_ALGORITHM;
  sender_key: string;
  ciphertext: Record<string, { type: 0 | 1; body: string }>;
}

export type ParsedOlmContent =
  | { ok: true; senderKey: string; message: { type: 0 | 1; body: string } | undefined }
  | { ok: false; code: "MALFORMED_EVENT" | "UNSUPPORTED_ALGORITHM" | "TOO_LARGE" };

/** Checks an `m.room.encrypted` to-device content and picks the ciphertext for `ourCurveKey`. */
export function parseOlmContent(content: unknown, ourCurveKey: string): ParsedOlmContent {
  const parsed = olmContentSchema.safeParse(content);
  if (!parsed.success) return { ok: false, code: "MALFORMED_EVENT" };
  if (parsed.data.algorithm !== OLM_ALGORITHM) return { ok: false, code: "UNSUPPORTED_ALGORITHM" };
  const ours = parsed.data.ciphertext[ourCurveKey];
  if (ours === undefined) return { ok: true, senderKey: parsed.data.sender_key, message: undefined };
  // Sessions, replay records and devices are found by this string: one key, one spelling (a
  // padded copy of a key would start a second session on a replayed pre-key message).
  const senderKey = canonicalCurveKey(parsed.data.sender_key);
  if (senderKey === undefined) return { ok: false, code: "MALFORMED_EVENT" };
  const message = olmMessageSchema.safeParse(ours);
  // A body is base64: a lone surrogate in it is malformed (and could not even be hashed as UTF-8).
  if (!message.success || !message.data.body.isWellFormed()) return { ok: false, code: "MALFORMED_EVENT" };
  // Checked before any cryptographic work (base64 is ASCII: UTF-16 length bounds the bytes).
  if (message.data.body.length > MAX_TO_DEVICE_CIPHERTEXT_BYTES) return { ok: false, code: "TOO_LARGE" };
  return { ok: true, senderKey, message: message.data };
}

/** A Curve25519 key as unpadded base64 of its 32 bytes, or undefined if it is none. */
function canonicalCurveKey(key: string): string | undefined {
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(key);
  } catch {
    return undefined;
  }
  return bytes.length === 32 ? encodeBase64(bytes) : undefined;
}
