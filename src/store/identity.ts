/** The identity check every back end runs when it opens. */
import { StoreError, StoreMismatchError } from "./errors.ts";
import type { StoreIdentity } from "./records.ts";
import { parseIdentity } from "./validate.ts";

/** What the caller opens a store for; omit `deviceId` to reuse the stored one (`restoreDeviceId`). */
export interface IdentityRequest {
  readonly userId: string;
  readonly deviceId?: string;
}

/**
 * Returns the identity the store has or must record. Throws `StoreMismatchError` if the store
 * belongs to someone else, `StoreError("IDENTITY_REQUIRED")` if it is new and no device ID was given.
 */
export function resolveIdentity(
  stored: StoreIdentity | undefined,
  requested: IdentityRequest,
): StoreIdentity {
  const req = { userId: requested.userId, deviceId: requested.deviceId };
  if (stored === undefined) {
    if (req.deviceId === undefined) {
      throw new StoreError(
        "IDENTITY_REQUIRED",
        "this crypto store is new: log in first and open it with the device ID the server assigned",
      );
    }
    return parseIdentity(req);
  }
  if (stored.userId !== req.userId) throw new StoreMismatchError("USER_MISMATCH", stored, req);
  if (req.deviceId !== undefined && stored.deviceId !== req.deviceId) {
    throw new StoreMismatchError("DEVICE_MISMATCH", stored, req);
  }
  return stored;
}
