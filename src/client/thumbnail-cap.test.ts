// A thumbnail is a preview, and an app shows many at once: buffered thumbnails (the server's, and
// an event's `info.thumbnail_url` / `thumbnail_file`) are capped by default at
// MAX_BUFFERED_THUMBNAIL_BYTES, below the cap of a buffered download. A server announcing more is
// refused before the body is read; an app that wants more says so with `maxBytes`.
import assert from "node:assert/strict";
import { it } from "node:test";
import { ClientError } from "./errors.ts";
import { MAX_BUFFERED_DOWNLOAD_BYTES, MAX_BUFFERED_THUMBNAIL_BYTES } from "./media.ts";
import { restoredMemoryClient } from "./test-support/scripted-sync.ts";

/** A media answer announcing `length` bytes (its body is a few bytes: it is refused unread). */
const announcing = (length: number) =>
  new Response(new Uint8Array(4), {
    status: 200,
    headers: { "content-type": "image/png", "content-length": String(length) },
  });

const tooLarge = (e: unknown) => e instanceof ClientError && e.code === "TOO_LARGE";

it("a thumbnail over MAX_BUFFERED_THUMBNAIL_BYTES is refused by default, from the server or from an event", async () => {
  assert.ok(MAX_BUFFERED_THUMBNAIL_BYTES < MAX_BUFFERED_DOWNLOAD_BYTES);
  const length = MAX_BUFFERED_THUMBNAIL_BYTES + 1;
  const client = await restoredMemoryClient({ fetch: async () => announcing(length) });
  await assert.rejects(client.downloadThumbnail("mxc://hs.example/abc", { width: 64, height: 64 }), tooLarge);
  const content = {
    msgtype: "m.image",
    body: "a.png",
    url: "mxc://hs.example/a",
    info: { thumbnail_url: "mxc://hs.example/t" },
  };
  await assert.rejects(client.downloadAttachmentThumbnail(content), tooLarge);
  // The same size is within a download's default cap: only a thumbnail is held to the lower one.
  assert.equal((await client.downloadMedia("mxc://hs.example/abc")).data.length, 4);
  await client.close();
});
