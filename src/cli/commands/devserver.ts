// `keyroom devserver`: the development homeserver in the foreground until SIGINT / SIGTERM.
import { startDevServer } from "../../devserver/index.ts";
import type { CommandIo } from "./io.ts";

export interface DevServerArgs {
  port: number;
  host: string;
  db: string;
  memory: boolean;
  serverName: string;
  /** Registration files of application services. */
  appservice: string[];
}

/** Prints the base URL, then runs until `io.signal` aborts, and closes cleanly. */
export async function devserverCommand(args: DevServerArgs, io: CommandIo): Promise<void> {
  const server = await startDevServer({
    port: args.port,
    host: args.host,
    memory: args.memory,
    serverName: args.serverName,
    appservices: args.appservice,
    ...(args.memory ? {} : { dbPath: args.db }),
  });
  io.out(`${server.baseUrl}\n`);
  await new Promise<void>((resolve) => {
    if (io.signal === undefined || io.signal.aborted) return resolve();
    io.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await server.close();
}
