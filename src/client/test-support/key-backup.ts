// A client key backup driver over a test's engine and HTTP stand-in: no account data, no rooms,
// errors thrown at the test. `exclusive`, when given, wraps each unit of work (to count them).
import type { OlmMachine } from "../../e2ee/machine.ts";
import { KeyBackup, type KeyBackupHost } from "../encryption/backup.ts";
import type { HttpClient } from "../http.ts";
import { silentLogger } from "../logger.ts";

export function testKeyBackup(
  machine: OlmMachine,
  http: HttpClient,
  exclusive?: KeyBackupHost["exclusive"],
): KeyBackup {
  return new KeyBackup({
    machine,
    http,
    logger: silentLogger,
    getAccountData: () => undefined,
    setAccountData: async () => {},
    emitRedecrypted: async () => {},
    reportError: (e) => {
      throw e;
    },
    knownRooms: () => [],
    ...(exclusive !== undefined ? { exclusive } : {}),
  });
}
