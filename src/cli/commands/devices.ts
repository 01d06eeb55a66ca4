// devices list | rename | delete: the account's own devices. `list` runs with the profile's
// encryption (when on) to show each device's keys and trust; the others need no crypto.
import type { MatrixClient } from "../../index.ts";
import { jsonLine } from "../output.ts";
import { openSession, type SessionMode } from "../session.ts";
import type { CommandIo } from "./io.ts";

async function withClient<T>(
  profileDir: string,
  mode: SessionMode,
  fn: (client: MatrixClient) => Promise<T>,
): Promise<T> {
  const { client } = await openSession(profileDir, mode);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** `keyroom devices list`: one JSON line per device of the account. */
export async function listDevicesCommand(args: { profileDir: string }, io: CommandIo): Promise<void> {
  await withClient(args.profileDir, "full", async (client) => {
    // Keys and trust exist only with encryption on; without it they are null, the device still listed.
    const own = client.isEncryptionEnabled;
    for (const d of await client.devices.list()) {
      io.out(
        jsonLine({
          device_id: d.deviceId,
          display_name: d.displayName ?? null,
          last_seen_ts: d.lastSeenTs ?? null,
          current: d.current,
          ed25519: d.current && own ? client.getFingerprint() : (d.e2ee?.ed25519 ?? null),
          trust: d.current && own ? "own" : (d.e2ee?.trust ?? null),
        }),
      );
    }
  });
}

/** `keyroom devices rename <device> <name>`. */
export async function renameDeviceCommand(args: {
  profileDir: string;
  deviceId: string;
  name: string;
}): Promise<void> {
  await withClient(args.profileDir, "plain", (client) => client.devices.rename(args.deviceId, args.name));
}

/** `keyroom devices delete <device...>`: confirms with the account password. */
export async function deleteDevicesCommand(args: {
  profileDir: string;
  deviceIds: string[];
  password: string;
}): Promise<void> {
  await withClient(args.profileDir, "plain", (client) =>
    client.devices.delete(args.deviceIds, { password: args.password }),
  );
}
