// Values several E2EE tests send: a history-sharing bundle's encrypted file info (key, IV and hash
// of the spec's m.room_key_bundle example, which bundle.test.ts keeps whole as its known answer)
// nesting deeper than any store keeps, and a to-device message that fails to decrypt.
import { Account } from "../../crypto/olm/index.ts";
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import type { OlmMachine } from "../machine.ts";

export const BUNDLE_FILE = {
  v: "v2",
  url: "mxc://x/bundle",
  key: {
    alg: "A256CTR",
    ext: true,
    k: "aWF6-32KGYaC3A_FEUCk1Bt0JA37zP0wrStgmdCaW-0",
    key_ops: ["encrypt", "decrypt"],
    kty: "oct",
  },
  iv: "w+sE15fzSc0AAAAAAAAAAA",
  hashes: { sha256: "fdSLu/YkRx3Wyh3KQabP3rd6+SFiKg5lsJZQHtkSAYA" },
};

/** `{ n: { n: … "x" } }`, `levels` objects deep. */
export function nested(levels: number): unknown {
  let v: unknown = "x";
  for (let i = 0; i < levels; i++) v = { n: v };
  return v;
}

/** An Olm to-device message from `sender` to `to` that fails to decrypt (its sender gets tracked). */
export function undecryptableFrom(sender: string, to: OlmMachine) {
  return {
    type: "m.room.encrypted",
    sender,
    content: {
      algorithm: "m.olm.v1.curve25519-aes-sha2",
      sender_key: Account.create().identityKeys.curve25519,
      ciphertext: { [to.identityKeys.curve25519]: { type: 1, body: encodeBase64(randomBytes(80)) } },
    },
  };
}
