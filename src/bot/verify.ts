// The bot's side of SAS verification with a user (`Bot.verify`, `keyroom bot verify`).
import type { MatrixClient, VerificationRequest } from "../index.ts";

/** What the person verifying compares with what the other side shows. */
export interface SasToCompare {
  emoji: { symbol: string; name: string }[];
  decimals: readonly number[];
}

/**
 * Starts SAS verification with `userId` (in a DM): `onSas` gets the emoji and decimals and
 * answers whether they match what the other side shows. Resolves when the flow ended.
 */
export async function verifyWithSas(
  client: MatrixClient,
  userId: string,
  onSas: (sas: SasToCompare) => Promise<boolean>,
): Promise<VerificationRequest> {
  const request = await client.requestVerification(userId);
  const ready = await request.waitFor((s) => s.phase !== "requested");
  if (ready.phase === "ready") await request.startSas();
  const shown = await request.waitFor(
    (s) => s.sas?.decimals !== undefined || s.phase === "done" || s.phase === "cancelled",
  );
  if (shown.phase !== "done" && shown.phase !== "cancelled") {
    // A cancel from the other side ends the wait: the answer (a person's) may never come.
    const match = await Promise.race([
      onSas({
        emoji: (shown.sas?.emoji ?? []).map((e) => ({ symbol: e.emoji, name: e.description })),
        decimals: shown.sas?.decimals ?? [],
      }),
      request.finished().then(() => false),
    ]);
    if (request.phase !== "cancelled") {
      if (match) await request.confirm();
      else await request.mismatch();
    }
  }
  await request.finished();
  return request;
}
