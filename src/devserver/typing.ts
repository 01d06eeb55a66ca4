// Typing notifications: ephemeral, in memory only. Each change bumps a serial that sync tokens carry.

/** Longest typing timeout a client may ask for; longer requests are clamped. */
export const MAX_TYPING_TIMEOUT_MS = 120_000;

export class Typing {
  private serialValue = 0;
  private readonly rooms = new Map<string, Map<string, ReturnType<typeof setTimeout>>>();
  private readonly roomSerial = new Map<string, number>();

  constructor(private readonly onChange: (roomId: string) => void) {}

  get serial(): number {
    return this.serialValue;
  }

  set(roomId: string, userId: string, typing: boolean, timeoutMs: number): void {
    let users = this.rooms.get(roomId);
    const existing = users?.get(userId);
    if (existing) clearTimeout(existing);
    if (typing) {
      if (!users) {
        users = new Map();
        this.rooms.set(roomId, users);
      }
      const t = setTimeout(
        () => this.set(roomId, userId, false, 0),
        Math.min(timeoutMs, MAX_TYPING_TIMEOUT_MS),
      );
      t.unref();
      users.set(userId, t);
      if (existing) return; // still typing: nothing new to tell anyone
    } else {
      if (!existing) return;
      users?.delete(userId);
    }
    this.serialValue += 1;
    this.roomSerial.set(roomId, this.serialValue);
    this.onChange(roomId);
  }

  /** Users typing in `roomId` if that changed after `since` (a serial from an earlier sync token). */
  changedSince(roomId: string, since: number): string[] | undefined {
    const s = this.roomSerial.get(roomId);
    // A serial above ours means the server restarted: report the current (empty or not) list.
    if (s === undefined || (s <= since && since <= this.serialValue)) return undefined;
    return [...(this.rooms.get(roomId)?.keys() ?? [])];
  }

  close(): void {
    for (const users of this.rooms.values()) for (const t of users.values()) clearTimeout(t);
    this.rooms.clear();
  }
}
