// Password hashing for devserver accounts: scrypt with a per-user salt.
import { randomBytes, scryptSync, timingSafeEqual } from "node:crypto";

// A development server: cost chosen so registering dozens of test users stays fast, while
// passwords are still never stored in the clear.
const SCRYPT_N = 1 << 12;
const KEY_LEN = 32;

export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, KEY_LEN, { N: SCRYPT_N });
  return `scrypt$${SCRYPT_N}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

export function checkPassword(password: string, stored: string | null): boolean {
  if (!stored) return false;
  const parts = stored.split("$");
  if (parts.length !== 4 || parts[0] !== "scrypt") return false;
  const n = Number(parts[1]);
  const salt = Buffer.from(parts[2]!, "base64");
  const expected = Buffer.from(parts[3]!, "base64");
  const got = scryptSync(password, salt, expected.length, { N: n });
  return timingSafeEqual(got, expected);
}
