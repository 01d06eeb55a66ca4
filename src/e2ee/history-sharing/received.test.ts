// An m.room_key_bundle that came over Olm is taken only with the sender's self-signed device keys
// (MSC4147, which the spec requires for this event), and only when those keys are the ones the
// Olm session and the payload name: another user's, another curve key, another Ed25519 key or a
// bad signature all refuse it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Account } from "../../crypto/olm/index.ts";
import type { OlmPayload } from "../olm-sessions/payload.ts";
import { signWithAccount } from "../signing.ts";
import { BUNDLE_FILE } from "../test-support/values.ts";
import { parseReceivedBundle, ROOM_KEY_BUNDLE_TYPE } from "./bundle.ts";

const ALICE = "@alice:example.org";
const ROOM = "!room:example.org";

/** Device keys of `userId`, signed under `signAs` (the same user unless a test forges it). */
function deviceKeys(
  account: Account,
  userId: string,
  deviceId: string,
  signAs = userId,
): Record<string, unknown> {
  const { curve25519, ed25519 } = account.identityKeys;
  return signWithAccount(account, signAs, deviceId, {
    user_id: userId,
    device_id: deviceId,
    algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
    keys: { [`curve25519:${deviceId}`]: curve25519, [`ed25519:${deviceId}`]: ed25519 },
  });
}

function payload(account: Account, senderDeviceKeys: Record<string, unknown> | undefined): OlmPayload {
  return {
    type: ROOM_KEY_BUNDLE_TYPE,
    content: { room_id: ROOM, file: BUNDLE_FILE },
    sender: ALICE,
    recipient: "@bob:example.org",
    recipient_keys: { ed25519: "x" },
    keys: { ed25519: account.identityKeys.ed25519 },
    ...(senderDeviceKeys === undefined ? {} : { sender_device_keys: senderDeviceKeys }),
  };
}

describe("a received m.room_key_bundle", () => {
  it("is taken with the sender's self-signed device keys, and refused without them or with any mismatch", () => {
    const alice = Account.create();
    const other = Account.create();
    const curve = alice.identityKeys.curve25519;
    const good = deviceKeys(alice, ALICE, "ADEV");
    assert.equal(parseReceivedBundle(payload(alice, good), ALICE, curve)?.roomId, ROOM);

    const keys = good.keys as Record<string, string>;
    const forgedSig = {
      ...good,
      signatures: {
        [ALICE]: {
          "ed25519:ADEV": (
            deviceKeys(other, ALICE, "ADEV").signatures as Record<string, Record<string, string>>
          )[ALICE]?.["ed25519:ADEV"],
        },
      },
    };
    for (const [why, dk, sender, senderKey] of [
      ["no sender_device_keys", undefined, ALICE, curve],
      [
        "another user's keys (signed under the sender's name)",
        deviceKeys(alice, "@mallory:example.org", "ADEV", ALICE),
        ALICE,
        curve,
      ],
      ["not the curve key of the Olm session", good, ALICE, other.identityKeys.curve25519],
      [
        "another Ed25519 key than the payload's",
        deviceKeys(other, ALICE, "ADEV"),
        ALICE,
        other.identityKeys.curve25519,
      ],
      [
        "keys changed after signing",
        { ...good, keys: { ...keys, "curve25519:ADEV": other.identityKeys.curve25519 } },
        ALICE,
        other.identityKeys.curve25519,
      ],
      ["a signature by another key", forgedSig, ALICE, curve],
    ] as const) {
      assert.equal(parseReceivedBundle(payload(alice, dk), sender, senderKey), undefined, why);
    }
  });
});
