// Thumbnails through the devserver: the server's thumbnail of plain media (authenticated endpoint),
// and the thumbnail a media event stores: `info.thumbnail_file` downloaded and decrypted in an
// encrypted room, `info.thumbnail_url` downloaded as it is.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encryptAttachment } from "../../src/crypto/attachments/index.ts";
import { ClientError, type JsonObject, MatrixError, thumbnailOf } from "../../src/index.ts";
import { devServerFixture, eventById, fixtureUser, sharedRoom, syncAll } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-thumbnails-");

// Not a real PNG: the devserver serves the original image as its thumbnail, whatever its bytes.
const image = new Uint8Array(2000).map((_, i) => (i * 17) & 0xff);
const thumb = new Uint8Array(300).map((_, i) => (i * 5 + 1) & 0xff);

describe("thumbnails (devserver)", () => {
  it("downloads the server's thumbnail of plain media, buffered and streamed; typed errors", async () => {
    const alice = await fixtureUser(fx, "alice");
    const c = alice.client;
    const mxc = await c.uploadMedia(image, { contentType: "image/png", filename: "pic.png" });
    const got = await c.downloadThumbnail(mxc, { width: 64, height: 64, method: "scale", animated: false });
    assert.deepEqual(got.data, image);
    assert.equal(got.contentType, "image/png");
    assert.equal(got.filename, "thumbnail.png");
    const { stream } = await c.downloadThumbnailStream(mxc, { width: 32, height: 32, method: "crop" });
    const parts: Uint8Array[] = [];
    for await (const p of stream) parts.push(p);
    assert.deepEqual(Buffer.concat(parts), Buffer.from(image));
    await assert.rejects(c.downloadThumbnail(mxc, { width: 64, height: 64, maxBytes: 100 }), {
      name: "ClientError",
      code: "TOO_LARGE",
    });

    // Media that is no image has no thumbnail: the server's answer, typed.
    const text = await c.uploadMedia(new TextEncoder().encode("notes"), { contentType: "text/plain" });
    await assert.rejects(
      c.downloadThumbnail(text, { width: 64, height: 64 }),
      (e: unknown) => e instanceof MatrixError && e.httpStatus === 400 && e.errcode === "M_UNKNOWN",
    );
    // Sizes and methods the spec does not allow are refused before any request.
    const bad: { width: number; height: number; method?: "crop" | "scale"; animated?: boolean }[] = [
      { width: 0, height: 64 },
      { width: 64, height: -1 },
      { width: 1.5, height: 64 },
      { width: 64, height: Number.NaN },
      { width: 64, height: 64, method: "stretch" as "crop" },
      { width: 64, height: 64, animated: "yes" as unknown as boolean },
    ];
    for (const opts of bad) {
      await assert.rejects(
        c.downloadThumbnail(mxc, opts),
        (e: unknown) => e instanceof ClientError && e.code === "INVALID_ARGUMENT",
        JSON.stringify(opts),
      );
    }
  });

  it("an encrypted room's event: thumbnail_file is downloaded and decrypted, a plain thumbnail_url fetched as it is", async () => {
    const alice = await fixtureUser(fx, "alice");
    const bob = await fixtureUser(fx, "bob");
    const roomId = await sharedRoom(alice, [bob]);
    // The main file and its thumbnail, each encrypted with its own key, as clients send them.
    const main = encryptAttachment(image);
    const mainUrl = await alice.client.uploadMedia(main.ciphertext);
    const small = encryptAttachment(thumb);
    const thumbUrl = await alice.client.uploadMedia(small.ciphertext);
    const content: JsonObject = {
      msgtype: "m.image",
      body: "pic.png",
      file: { ...main.info, url: mainUrl },
      info: {
        mimetype: "image/png",
        size: image.length,
        thumbnail_file: { ...small.info, url: thumbUrl },
        thumbnail_info: { mimetype: "image/png", size: thumb.length, w: 32, h: 32 },
      },
    };
    const eventId = await alice.client.sendMessage(roomId, content);
    await syncAll(bob);
    const ev = eventById(bob, eventId);
    assert.equal(ev.encryption?.decrypted, true);
    const described = thumbnailOf(ev.content);
    assert.equal(described?.encrypted, true);
    assert.equal(described?.url, thumbUrl);
    assert.equal(described?.mimetype, "image/png");
    assert.equal(described?.size, thumb.length);
    assert.deepEqual(await bob.client.downloadAttachmentThumbnail(ev.content), thumb);
    assert.deepEqual(await bob.client.downloadAttachment(ev.content), image);

    // The server holds only ciphertext: it cannot make a thumbnail of it.
    await assert.rejects(
      bob.client.downloadThumbnail(mainUrl, { width: 32, height: 32 }),
      (e: unknown) => e instanceof MatrixError && e.httpStatus === 400,
    );
    // A tampered thumbnail_file is refused, and never passed over for a thumbnail_url beside it.
    const info = ev.content.info as JsonObject;
    const tampered: JsonObject = {
      ...ev.content,
      info: {
        ...info,
        thumbnail_file: { ...(info.thumbnail_file as JsonObject), hashes: { sha256: "A".repeat(43) } },
        thumbnail_url: await bob.client.uploadMedia(thumb, { contentType: "image/png" }),
      },
    };
    await assert.rejects(bob.client.downloadAttachmentThumbnail(tampered), {
      name: "AttachmentError",
      code: "HASH_MISMATCH",
    });

    // A sender may put a plain (unencrypted) thumbnail in an encrypted event: fetched as it is,
    // and thumbnailOf says it was not encrypted.
    const plainThumb = await alice.client.uploadMedia(thumb, { contentType: "image/png" });
    const mixedId = await alice.client.sendMessage(roomId, {
      msgtype: "m.image",
      body: "pic.png",
      file: { ...main.info, url: mainUrl },
      info: { mimetype: "image/png", thumbnail_url: plainThumb, thumbnail_info: { mimetype: "image/png" } },
    });
    await syncAll(bob);
    const mixed = eventById(bob, mixedId);
    assert.equal(thumbnailOf(mixed.content)?.encrypted, false);
    assert.deepEqual(await bob.client.downloadAttachmentThumbnail(mixed.content), thumb);

    // No thumbnail stored: a typed error (and thumbnailOf says so first).
    const bare = { msgtype: "m.image", body: "x", file: { ...main.info, url: mainUrl } };
    assert.equal(thumbnailOf(bare), undefined);
    await assert.rejects(bob.client.downloadAttachmentThumbnail(bare), {
      name: "ClientCryptoError",
      code: "NO_ATTACHMENT",
    });
  });
});
