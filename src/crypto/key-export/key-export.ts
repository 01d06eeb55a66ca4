import {
  aes256Ctr,
  concatBytes,
  constantTimeEqual,
  decodeArmouredBase64,
  encodeBase64,
  hmacSha256,
  pbkdf2Sha512,
  pbkdf2Sha512Async,
  randomBytes,
  utf8Decode,
  utf8Encode,
  wipe,
} from "../primitives/symmetric.ts";
import { KeyExportError } from "./errors.ts";
import type { ExportedRoomKey } from "./exported-room-key.ts";
import { parseExportPayload } from "./exported-room-key.ts";

const HEADER = "-----BEGIN MEGOLM SESSION DATA-----";
const FOOTER = "-----END MEGOLM SESSION DATA-----";
const FORMAT_VERSION = 1;
/** version (1) + salt (16) + IV (16) + rounds (4); the HMAC (32) closes the file. */
const HEADER_LENGTH = 1 + 16 + 16 + 4;
const MAC_LENGTH = 32;
/** Base64 characters per line in the files we write, as Element writes them. */
const LINE_LENGTH = 96;

/** PBKDF2 rounds used when the caller doesn't choose (Element's choice). */
export const DEFAULT_EXPORT_ROUNDS = 500_000;
/**
 * The largest round count we accept when importing: the count comes from the file, and an attacker who
 * hands us a file with 2^32-1 rounds would otherwise tie the CPU up for hours.
 */
export const MAX_EXPORT_ROUNDS = 10_000_000;

interface FileKeys {
  aesKey: Uint8Array;
  macKey: Uint8Array;
}

function splitKeys(derived: Uint8Array): FileKeys {
  const keys = { aesKey: derived.slice(0, 32), macKey: derived.slice(32, 64) };
  wipe(derived);
  return keys;
}

function deriveKeys(passphrase: string, salt: Uint8Array, rounds: number): FileKeys {
  return splitKeys(pbkdf2Sha512(utf8Encode(passphrase), salt, rounds, 64));
}

/** `deriveKeys` off the calling thread where the runtime can (Node's thread pool, Web Crypto). */
async function deriveKeysAsync(passphrase: string, salt: Uint8Array, rounds: number): Promise<FileKeys> {
  return splitKeys(await pbkdf2Sha512Async(utf8Encode(passphrase), salt, rounds, 64));
}

function encodeArmouredBase64(data: Uint8Array): string {
  // The export format uses padded standard base64, unlike most of Matrix.
  const unpadded = encodeBase64(data);
  const b64 = unpadded + "=".repeat((4 - (unpadded.length % 4)) % 4);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += LINE_LENGTH) lines.push(b64.slice(i, i + LINE_LENGTH));
  return `${HEADER}\n${lines.join("\n")}\n${FOOTER}\n`;
}

function decodeArmour(file: string): Uint8Array {
  const start = file.indexOf(HEADER);
  const end = file.indexOf(FOOTER);
  if (start < 0 || end < start)
    throw new KeyExportError("BAD_FORMAT", "not a Megolm session export (no header/footer)");
  try {
    return decodeArmouredBase64(file.slice(start + HEADER.length, end));
  } catch {
    throw new KeyExportError("BAD_FORMAT", "the export body is not valid base64");
  }
}

/** Options for writing an export file. */
export interface KeyExportOptions {
  /** PBKDF2-SHA-512 rounds; defaults to {@link DEFAULT_EXPORT_ROUNDS}. */
  rounds?: number;
}

/** A new file's parameters: the round count checked, a random salt and IV. */
function newFileParams(options: KeyExportOptions): { rounds: number; salt: Uint8Array; iv: Uint8Array } {
  const rounds = options.rounds ?? DEFAULT_EXPORT_ROUNDS;
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > MAX_EXPORT_ROUNDS) {
    throw new KeyExportError("BAD_ROUNDS", `rounds must be an integer from 1 to ${MAX_EXPORT_ROUNDS}`);
  }
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  // Clear bit 63 so the 128-bit counter can't wrap within a file, as the format requires.
  iv[8] = (iv[8] as number) & 0x7f;
  return { rounds, salt, iv };
}

function seal(
  keys: readonly ExportedRoomKey[],
  { rounds, salt, iv }: { rounds: number; salt: Uint8Array; iv: Uint8Array },
  { aesKey, macKey }: FileKeys,
): string {
  const plaintext = utf8Encode(JSON.stringify(keys));
  const ciphertext = aes256Ctr(aesKey, iv, plaintext);
  wipe(plaintext);
  const header = new Uint8Array(HEADER_LENGTH);
  header[0] = FORMAT_VERSION;
  header.set(salt, 1);
  header.set(iv, 17);
  new DataView(header.buffer).setUint32(33, rounds, false);
  const body = concatBytes(header, ciphertext);
  const mac = hmacSha256(macKey, body);
  wipe(aesKey);
  wipe(macKey);
  return encodeArmouredBase64(concatBytes(body, mac));
}

/**
 * Encrypts room keys into the standard passphrase-protected export file (the format Element and
 * matrix-js-sdk read and write): PBKDF2-SHA-512 → AES-256-CTR + HMAC-SHA-256, armoured base64.
 */
export function encryptKeyExport(
  keys: readonly ExportedRoomKey[],
  passphrase: string,
  options: KeyExportOptions = {},
): string {
  const params = newFileParams(options);
  return seal(keys, params, deriveKeys(passphrase, params.salt, params.rounds));
}

/** `encryptKeyExport` with the passphrase derivation off the calling thread where the runtime can. */
export async function encryptKeyExportAsync(
  keys: readonly ExportedRoomKey[],
  passphrase: string,
  options: KeyExportOptions = {},
): Promise<string> {
  const params = newFileParams(options);
  return seal(keys, params, await deriveKeysAsync(passphrase, params.salt, params.rounds));
}

interface OpenedFile {
  readonly data: Uint8Array;
  readonly salt: Uint8Array;
  readonly iv: Uint8Array;
  readonly rounds: number;
}

/** The file's armour and header, checked before any derivation. */
function readFile(file: string): OpenedFile {
  const data = decodeArmour(file);
  if (data.length < HEADER_LENGTH + MAC_LENGTH)
    throw new KeyExportError("BAD_FORMAT", "the export is truncated");
  if (data[0] !== FORMAT_VERSION) throw new KeyExportError("BAD_FORMAT", `unknown export version ${data[0]}`);
  const salt = data.subarray(1, 17);
  const iv = data.subarray(17, 33);
  const rounds = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(33, false);
  if (rounds < 1 || rounds > MAX_EXPORT_ROUNDS) {
    throw new KeyExportError(
      "BAD_ROUNDS",
      `the export asks for ${rounds} PBKDF2 rounds (at most ${MAX_EXPORT_ROUNDS})`,
    );
  }
  return { data, salt, iv, rounds };
}

function open({ data, iv }: OpenedFile, { aesKey, macKey }: FileKeys): unknown[] {
  const body = data.subarray(0, data.length - MAC_LENGTH);
  const mac = data.subarray(data.length - MAC_LENGTH);
  const valid = constantTimeEqual(hmacSha256(macKey, body), mac);
  wipe(macKey);
  if (!valid) {
    wipe(aesKey);
    throw new KeyExportError("BAD_PASSPHRASE", "wrong passphrase, or the export file was modified");
  }
  const plaintext = aes256Ctr(aesKey, iv, data.subarray(HEADER_LENGTH, data.length - MAC_LENGTH));
  wipe(aesKey);
  let json: string;
  try {
    json = utf8Decode(plaintext);
  } catch {
    throw new KeyExportError("BAD_CONTENT", "decrypted export is not UTF-8");
  } finally {
    wipe(plaintext);
  }
  return parseExportPayload(json);
}

/**
 * Decrypts an export file and returns its entries, still unvalidated: callers check each one with
 * `parseExportedRoomKey`, so that one odd entry from another client does not fail the whole import.
 * Throws `KeyExportError` for a malformed file or a wrong passphrase.
 */
export function decryptKeyExport(file: string, passphrase: string): unknown[] {
  const opened = readFile(file);
  return open(opened, deriveKeys(passphrase, opened.salt, opened.rounds));
}

/**
 * `decryptKeyExport` with the passphrase derivation off the calling thread where the runtime can:
 * a file may ask for up to `MAX_EXPORT_ROUNDS` rounds, seconds of CPU.
 */
export async function decryptKeyExportAsync(file: string, passphrase: string): Promise<unknown[]> {
  const opened = readFile(file);
  return open(opened, await deriveKeysAsync(passphrase, opened.salt, opened.rounds));
}
