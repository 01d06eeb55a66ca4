// Password hashing for devserver accounts: scrypt with a per-user salt.
import { randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import { MatrixError } from "./errors.ts";

/** Wrong passwords for one account within FAILED_PASSWORD_WINDOW_MS before its password checks are refused. */
export const MAX_FAILED_PASSWORDS = 10;
/** The window MAX_FAILED_PASSWORDS counts in, and how long the refusal lasts from the first failure. */
export const FAILED_PASSWORD_WINDOW_MS = 60_000;

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

/**
 * Wrong passwords per account (login and the UIA password stage): past MAX_FAILED_PASSWORDS in
 * FAILED_PASSWORD_WINDOW_MS, password checks for that account answer 429 M_LIMIT_EXCEEDED until the
 * window ends, right password or not. Only existing accounts are tracked, so the map is bounded by
 * them; a right password clears the count.
 */
export class PasswordThrottle {
  private readonly failures = new Map<string, { count: number; since: number }>();

  /** Checks `password` for `userId` (whose stored hash is `stored`), counting a failure. */
  check(userId: string, password: string, stored: string | null): boolean {
    const now = Date.now();
    let f = this.failures.get(userId);
    if (f !== undefined && now - f.since >= FAILED_PASSWORD_WINDOW_MS) {
      this.failures.delete(userId);
      f = undefined;
    }
    if (f !== undefined && f.count >= MAX_FAILED_PASSWORDS) {
      throw new MatrixError(429, "M_LIMIT_EXCEEDED", "Too many wrong passwords for this account", {
        retry_after_ms: FAILED_PASSWORD_WINDOW_MS - (now - f.since),
      });
    }
    if (checkPassword(password, stored)) {
      this.failures.delete(userId);
      return true;
    }
    if (f === undefined) this.failures.set(userId, { count: 1, since: now });
    else f.count++;
    return false;
  }
}
