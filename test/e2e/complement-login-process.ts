// The Keyroom process of complement-crypto's SigkillBeforeKeysUploadResponse
// (complement-crypto-faults.test.ts): it logs a user in with encryption on (a SQLite crypto store
// in `directory`, `restoreDeviceId`), which uploads the new device's keys, then syncs once and
// exits. The test SIGKILLs it while its /keys/upload is at the server. It prints one JSON line per
// step (never a key or a token).
//
// Usage: complement-login-process.ts '<LoginProcessConfig as JSON>'
import { MatrixClient } from "../../src/index.ts";

export interface LoginProcessConfig {
  homeserverUrl: string;
  directory: string;
  userId: string;
  password: string;
}

export type LoginProcessLine =
  | { t: "boot"; pid: number }
  | { t: "logged-in"; deviceId: string }
  | { t: "synced" }
  | { t: "error"; message: string };

const out = (line: LoginProcessLine): void => void process.stdout.write(`${JSON.stringify(line)}\n`);

async function main(cfg: LoginProcessConfig): Promise<void> {
  out({ t: "boot", pid: process.pid });
  const client = new MatrixClient({
    homeserverUrl: cfg.homeserverUrl,
    syncTimeoutMs: 0,
    encryption: { store: { directory: cfg.directory }, restoreDeviceId: true },
  });
  await client.login({ user: cfg.userId, password: cfg.password });
  out({ t: "logged-in", deviceId: client.deviceId ?? "" });
  await client.syncOnce({ timeoutMs: 0 });
  out({ t: "synced" });
  await client.close();
}

main(JSON.parse(process.argv[2] ?? "{}") as LoginProcessConfig).catch((e: unknown) => {
  out({ t: "error", message: e instanceof Error ? e.message : String(e) });
  process.exit(1);
});
