// Encrypted attachments against matrix-nio (Debian python3-matrix-nio), an implementation we did not write.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decryptAttachment, encryptAttachment } from "../../src/crypto/attachments/index.ts";
import { decodeBase64, encodeBase64 } from "../../src/crypto/primitives/index.ts";
import { runPythonJson, skipReasonForNio } from "../support/python.ts";

const NIO_DECRYPT = `
import sys, json, base64
from nio.crypto import decrypt_attachment
req = json.load(sys.stdin)
d = lambda s: base64.b64decode(s + "=" * (-len(s) % 4))
info = req["info"]
plain = decrypt_attachment(d(req["ciphertext"]), info["key"]["k"], info["hashes"]["sha256"], info["iv"])
print(json.dumps({"plaintext": base64.b64encode(plain).decode()}))
`;

const NIO_ENCRYPT = `
import sys, json, base64
from nio.crypto import encrypt_attachment
req = json.load(sys.stdin)
d = lambda s: base64.b64decode(s + "=" * (-len(s) % 4))
data, keys = encrypt_attachment(d(req["plaintext"]))
print(json.dumps({"ciphertext": base64.b64encode(data).decode(), "info": keys}))
`;

const skip = skipReasonForNio();

test("attachments move both ways between Keyroom and matrix-nio", { skip }, () => {
  const data = new Uint8Array(10_000).map((_, i) => (i * 13) & 0xff);

  const ours = encryptAttachment(data);
  const nioPlain = runPythonJson<{ plaintext: string }>(NIO_DECRYPT, {
    ciphertext: encodeBase64(ours.ciphertext),
    info: ours.info,
  });
  assert.deepEqual(decodeBase64(nioPlain.plaintext), data);

  const theirs = runPythonJson<{ ciphertext: string; info: unknown }>(NIO_ENCRYPT, {
    plaintext: encodeBase64(data),
  });
  assert.deepEqual(decryptAttachment(decodeBase64(theirs.ciphertext), theirs.info), data);
});
