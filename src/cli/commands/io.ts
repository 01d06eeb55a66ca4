// What a command may touch besides the client: where its output goes, and a signal that asks a
// long-running command (tail, devserver) to stop.
export interface CommandIo {
  /** Writes to stdout (each call is whole lines). */
  out(text: string): void;
  /** Writes to stderr (whole lines). */
  err(text: string): void;
  /** Aborted on SIGINT / SIGTERM. */
  signal?: AbortSignal;
  /** Reads one line from stdin (undefined at its end); commands that ask the user use it. */
  readLine?(): Promise<string | undefined>;
  /**
   * Reads a secret (a passphrase): on a terminal after `prompt` (on stderr) without echo, else one
   * line of stdin. Undefined at the end of stdin.
   */
  readSecret?(prompt: string): Promise<string | undefined>;
  /** stdout is a terminal (a person reads it), not a pipe. */
  interactive?: boolean;
  /** stdin is a terminal (a person types secrets, unseen, so a new one is asked for twice). */
  typed?: boolean;
  /**
   * stderr is a terminal (a person watches it): progress notices (`tail`'s retries) go there. A
   * script reading stderr gets only errors, one line each.
   */
  errTerminal?: boolean;
}
