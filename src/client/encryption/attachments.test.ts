import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AttachmentError, encryptAttachment } from "../../crypto/attachments/index.ts";
import type { JsonObject } from "../../wire/index.ts";
import {
  attachmentOf,
  downloadAttachmentBytes,
  downloadAttachmentStream,
  encryptedFile,
} from "./attachments.ts";

const { info } = encryptAttachment(new TextEncoder().encode("a picture"));
const file = encryptedFile(info, "mxc://example.org/abc") as unknown as JsonObject;

describe("attachmentOf", () => {
  it("reads an encrypted file with its declared type and size", () => {
    const a = attachmentOf({
      msgtype: "m.image",
      body: "a.png",
      file,
      info: { mimetype: "image/png", size: 9 },
    });
    assert.ok(a?.encrypted);
    assert.equal(a.url, "mxc://example.org/abc");
    assert.equal(a.file.hashes.sha256, info.hashes.sha256);
    assert.equal(a.mimetype, "image/png");
    assert.equal(a.size, 9);
  });

  it("reads a plain url", () => {
    assert.deepEqual(attachmentOf({ msgtype: "m.file", url: "mxc://example.org/x" }), {
      encrypted: false,
      url: "mxc://example.org/x",
      mimetype: undefined,
      size: undefined,
    });
  });

  it("refuses malformed files instead of falling back to a plain url beside them", () => {
    const bad: JsonObject[] = [
      { ...file, v: "v1" },
      { ...file, url: "https://evil.example/x" },
      { ...file, iv: "short" },
      { ...file, key: { ...(file.key as JsonObject), k: "AAAA" } },
      { ...file, hashes: {} },
    ];
    for (const f of bad) {
      assert.equal(attachmentOf({ msgtype: "m.file", file: f, url: "mxc://example.org/plain" }), undefined);
    }
    assert.equal(attachmentOf({ msgtype: "m.text", body: "no media" }), undefined);
    assert.equal(attachmentOf({ url: "https://not-mxc" }), undefined);
    // Not content URIs: an app building a media URL from them would request another path.
    for (const url of [
      "mxc://example.org/../../client/v3/rooms",
      "mxc://example.org/abc/def",
      "mxc://example.org/abc?x=1",
      "mxc://example.org/a%2Fb",
      "mxc://../abc",
      "mxc://example.org/",
      "mxc:///abc",
    ]) {
      assert.equal(attachmentOf({ msgtype: "m.file", url }), undefined, url);
      assert.equal(attachmentOf({ msgtype: "m.file", file: { ...file, url } }), undefined, url);
    }
    assert.equal(attachmentOf({ url: "mxc://[::1]:8448/a_b-C9" })?.url, "mxc://[::1]:8448/a_b-C9");
    // Nonsense in `info` is ignored, not trusted.
    const a = attachmentOf({ url: "mxc://example.org/x", info: { mimetype: 5, size: -1 } });
    assert.equal(a?.mimetype, undefined);
    assert.equal(a?.size, undefined);
  });
});

describe("downloadAttachment", () => {
  it("refuses a malformed file before downloading anything, never falling back to a plain url", async () => {
    const bad: unknown[] = [
      { ...file, v: "v1" },
      { ...file, hashes: {} },
      null,
      "mxc://example.org/x",
      [file],
    ];
    for (const f of bad) {
      const content = { msgtype: "m.file", file: f, url: "mxc://example.org/plain" } as JsonObject;
      const downloads: string[] = [];
      const isBadFile = (e: unknown) => e instanceof AttachmentError && e.code === "BAD_FILE_INFO";
      await assert.rejects(
        downloadAttachmentBytes(content, async (mxc) => {
          downloads.push(mxc);
          return new Uint8Array(9);
        }),
        isBadFile,
      );
      await assert.rejects(
        downloadAttachmentStream(content, async (mxc) => {
          downloads.push(mxc);
          return new Blob([new Uint8Array(9)]).stream();
        }),
        isBadFile,
      );
      assert.deepEqual(downloads, [], JSON.stringify(f));
    }
  });

  it("a streamed download that fails before its body wipes the key the decryption held", async (t) => {
    const key = Buffer.from(info.key.k, "base64url");
    let wipes = 0;
    const fill = Uint8Array.prototype.fill;
    t.mock.method(
      Uint8Array.prototype,
      "fill",
      function (this: Uint8Array, ...args: Parameters<typeof fill>) {
        if (args[0] === 0 && this.length === 32 && key.equals(this)) wipes++;
        return fill.apply(this, args);
      },
    );
    await assert.rejects(
      downloadAttachmentStream({ msgtype: "m.file", file }, async () => {
        throw new Error("offline");
      }),
      /offline/,
    );
    // One for the check of the file object, one for the decryptor that was ready for the body.
    assert.equal(wipes, 2);
  });
});
