/** The `{ type, body }` form Olm messages take in `m.room.encrypted` `ciphertext[key]`. */
import { CryptoPrimitiveError, decodeBase64 } from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";

export const MESSAGE_TYPE_PRE_KEY = 0;
export const MESSAGE_TYPE_NORMAL = 1;

/** An Olm message as carried over the wire: `body` is unpadded base64 of the encoded message. */
export interface OlmMessage {
  readonly type: 0 | 1;
  readonly body: string;
}

/**
 * Checks the shape of an untrusted `{ type, body }` and returns the decoded body bytes.
 * Throws `BAD_MESSAGE_TYPE` or `BAD_MESSAGE_FORMAT`.
 */
export function decodeOlmMessageBody(message: OlmMessage, expectedType?: 0 | 1): Uint8Array {
  if (typeof message !== "object" || message === null) {
    throw new OlmError("BAD_MESSAGE_FORMAT", "Olm message must be an object with type and body");
  }
  const { type, body } = message;
  if (type !== MESSAGE_TYPE_PRE_KEY && type !== MESSAGE_TYPE_NORMAL) {
    throw new OlmError("BAD_MESSAGE_TYPE", "Olm message type must be 0 (pre-key) or 1 (normal)");
  }
  if (expectedType !== undefined && type !== expectedType) {
    throw new OlmError("BAD_MESSAGE_TYPE", `expected an Olm message of type ${expectedType}`);
  }
  if (typeof body !== "string") throw new OlmError("BAD_MESSAGE_FORMAT", "Olm message body must be a string");
  try {
    return decodeBase64(body);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError)
      throw new OlmError("BAD_MESSAGE_FORMAT", "Olm message body is not base64");
    throw e;
  }
}
