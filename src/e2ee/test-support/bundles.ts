// Sending a history-sharing bundle (the file info of `BUNDLE_FILE`) between test clients.
import assert from "node:assert/strict";
import type { EncryptedFile } from "../../crypto/attachments/index.ts";
import type { TestClient } from "./fake-homeserver.ts";
import { BUNDLE_FILE } from "./values.ts";

/** `from` sends its bundle of `roomId` to `userId`'s devices over Olm (sessions claimed first). */
export async function sendBundle(from: TestClient, userId: string, roomId: string): Promise<void> {
  await from.machine.updateTrackedUsers([userId]);
  await from.flush();
  const claim = await from.machine.getMissingSessions([userId]);
  if (claim !== undefined) await from.send(claim);
  const { request } = await from.machine.historySharing.shareBundle(
    roomId,
    userId,
    BUNDLE_FILE as EncryptedFile,
  );
  assert.ok(request);
  await from.send(request);
}
