import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OlmError } from "../errors.ts";
import { decodeOlmMessageBody, type OlmMessage } from "./olm-message.ts";

const isCode = (code: string) => (e: unknown) => e instanceof OlmError && e.code === code;

describe("{ type, body } Olm messages", () => {
  it("decodes an unpadded base64 body", () => {
    assert.deepEqual([...decodeOlmMessageBody({ type: 1, body: "AwE" })], [3, 1]);
  });

  it("checks the type and the expected type", () => {
    assert.throws(
      () => decodeOlmMessageBody({ type: 2, body: "AA" } as unknown as OlmMessage),
      isCode("BAD_MESSAGE_TYPE"),
    );
    assert.throws(() => decodeOlmMessageBody({ type: 1, body: "AA" }, 0), isCode("BAD_MESSAGE_TYPE"));
  });

  it("refuses non-objects, non-string and non-base64 bodies", () => {
    for (const m of [null, undefined, "AwE", 3]) {
      assert.throws(() => decodeOlmMessageBody(m as unknown as OlmMessage), isCode("BAD_MESSAGE_FORMAT"));
    }
    assert.throws(
      () => decodeOlmMessageBody({ type: 0, body: 5 } as unknown as OlmMessage),
      isCode("BAD_MESSAGE_FORMAT"),
    );
    assert.throws(() => decodeOlmMessageBody({ type: 0, body: "not base64!" }), isCode("BAD_MESSAGE_FORMAT"));
  });
});
