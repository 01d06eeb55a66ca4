// What every example shares: unique user names (the tests run all examples against one
// devserver) and the `main` of a file run alone (a throw-away devserver and directory).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { MatrixClient, RoomEvent } from "keyroom";
import { startDevServer } from "keyroom/devserver";

/** Where an example runs: a homeserver URL and a directory it may write stores into. */
export interface ExampleEnv {
  readonly homeserverUrl: string;
  readonly dir: string;
}

let counter = 0;
/** A user name no other example (or earlier run) on the same server took. */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}${counter}`;
}

/** Whether the module with this `import.meta.url` is the program node was started with. */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(entry).href === moduleUrl;
}

/**
 * Resolves with the next `m.room.message` someone else sends in the room, as this client sees it
 * (decrypted if it could be). The client's sync loop must be running.
 */
export function nextMessage(client: MatrixClient, roomId: string): Promise<RoomEvent> {
  return new Promise((resolve) => {
    const off = client.on("room.event", (room, event) => {
      if (room.roomId !== roomId || event.type !== "m.room.message" || event.sender === client.userId) return;
      off();
      resolve(event);
    });
  });
}

/** Runs an example against an in-memory devserver and a temp directory, prints its result. */
export async function runAlone<T>(run: (env: ExampleEnv) => Promise<T>): Promise<void> {
  const server = await startDevServer({ memory: true, port: 0 });
  const dir = await mkdtemp(join(tmpdir(), "keyroom-example-"));
  // `encryption: true` keeps its SQLite store under $XDG_DATA_HOME: keep this run's out of your home.
  process.env.XDG_DATA_HOME = dir;
  try {
    console.log(await run({ homeserverUrl: server.baseUrl, dir }));
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}
