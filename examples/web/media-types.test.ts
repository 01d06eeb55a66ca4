import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { blobType } from "./media-types.ts";

describe("web chat: blob types of received files", () => {
  it("keeps inert types, turns anything that can run script into application/octet-stream", () => {
    assert.equal(blobType("image/png"), "image/png");
    assert.equal(blobType("Text/Plain; charset=utf-8"), "text/plain");
    for (const t of [
      "text/html",
      "image/svg+xml",
      "application/xhtml+xml",
      "text/xml",
      "application/pdf",
      "",
      5,
      undefined,
    ]) {
      assert.equal(blobType(t), "application/octet-stream", String(t));
    }
  });
});
