// Key backup records as another client would upload them: for tests of restoring from a backup.
import { encryptKeyBackupData } from "../../crypto/backup/index.ts";
import type { InboundGroupSession } from "../../crypto/megolm/index.ts";
import type { PkEncryption } from "../../crypto/pk/index.ts";

/**
 * `session` (from its first known index, not forwarded, not verified) encrypted to a backup key
 * (`encryption`), with a fixed sender key and `claimedKeys` (by default a fixed Ed25519 key).
 */
export function backupRecord(
  encryption: PkEncryption,
  session: InboundGroupSession,
  claimedKeys: Record<string, string> = { ed25519: "ZWQ" },
): ReturnType<typeof encryptKeyBackupData> {
  return encryptKeyBackupData(
    encryption,
    {
      algorithm: "m.megolm.v1.aes-sha2",
      sender_key: "c2VuZGVy",
      session_key: session.exportAtFirstKnownIndex(),
      sender_claimed_keys: claimedKeys,
      forwarding_curve25519_key_chain: [],
    },
    { firstMessageIndex: 0, forwardedCount: 0, isVerified: false },
  );
}
