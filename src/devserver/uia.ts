// User-interactive authentication: sessions, flows, and the stages this server offers
// (`m.login.dummy` for registration, `m.login.password` for sensitive account operations).
import * as z from "../wire/zod.ts";
import { MatrixError, UiaChallenge } from "./errors.ts";
import { type Homeserver, randomId } from "./homeserver.ts";

/** How long a UIA session stays valid. */
export const UIA_SESSION_TTL_MS = 10 * 60_000;
/** Most concurrent UIA sessions kept; the oldest are dropped first. */
export const MAX_UIA_SESSIONS = 10_000;

export type UiaStage = "m.login.dummy" | "m.login.password";

const authSchema = z.looseObject({
  type: z.optional(z.string()),
  session: z.optional(z.string()),
  password: z.optional(z.string()),
  user: z.optional(z.string()),
  identifier: z.optional(z.looseObject({ type: z.string(), user: z.optional(z.string()) })),
});

export type UiaAuth = z.infer<typeof authSchema>;
export const uiaAuthField = z.nullable(z.optional(authSchema));

interface Session {
  completed: Set<UiaStage>;
  created: number;
  /** What the session was started for, so a session cannot be replayed on another operation. */
  purpose: string;
}

export class Uia {
  private readonly sessions = new Map<string, Session>();
  constructor(private readonly hs: Homeserver) {}

  /**
   * Requires that one of `flows` is complete. `userId` is the account whose password counts (for
   * password stages). Throws a 401 challenge until done; returns when authenticated.
   */
  require(
    auth: UiaAuth | null | undefined,
    purpose: string,
    flows: UiaStage[][],
    userId: string | undefined,
  ): void {
    this.expire();
    let sessionId = auth?.session;
    let session = sessionId !== undefined ? this.sessions.get(sessionId) : undefined;
    if (sessionId !== undefined && (!session || session.purpose !== purpose)) {
      throw new MatrixError(400, "M_UNKNOWN", "Unknown or expired UIA session");
    }
    if (!session) {
      sessionId = randomId(16);
      session = { completed: new Set(), created: Date.now(), purpose };
      this.sessions.set(sessionId, session);
    }
    let failure: MatrixError | undefined;
    if (auth?.type !== undefined) {
      const stage = auth.type;
      const offered = flows.some((f) => (f as string[]).includes(stage));
      if (!offered) failure = new MatrixError(400, "M_UNRECOGNIZED", `Unsupported auth type ${stage}`);
      else if (stage === "m.login.dummy") session.completed.add("m.login.dummy");
      else if (stage === "m.login.password") {
        const claimed = auth.identifier?.user ?? auth.user;
        const claimedId = claimed && !claimed.startsWith("@") ? `@${claimed}:${this.hs.serverName}` : claimed;
        const user = userId ? this.hs.accounts.getUser(userId) : undefined;
        if (
          user &&
          userId !== undefined &&
          claimedId === userId &&
          this.hs.passwords.check(userId, auth.password ?? "", user.password_hash)
        ) {
          session.completed.add("m.login.password");
        } else failure = new MatrixError(401, "M_FORBIDDEN", "Invalid username or password");
      }
    }
    if (flows.some((f) => f.every((s) => session.completed.has(s)))) {
      this.sessions.delete(sessionId!);
      return;
    }
    const body: Record<string, unknown> = {
      flows: flows.map((stages) => ({ stages })),
      params: {},
      session: sessionId,
      completed: [...session.completed],
    };
    if (failure) {
      body.errcode = failure.code;
      body.error = failure.message;
    }
    throw new UiaChallenge(body);
  }

  private expire(): void {
    const cutoff = Date.now() - UIA_SESSION_TTL_MS;
    for (const [id, s] of this.sessions) {
      if (s.created < cutoff || this.sessions.size > MAX_UIA_SESSIONS) this.sessions.delete(id);
      else break;
    }
  }
}
