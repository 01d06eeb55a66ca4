// A file streamed into an encrypted room: its hash is known once the upload has read the stream
// whole. A server that answers before that gets an error, not an endless wait; a real upload, with
// or without a length, goes through.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MalformedResponseError } from "../../src/client/errors.ts";
import type { FetchLike } from "../../src/client/http.ts";
import { MatrixClient } from "../../src/client/index.ts";
import { devServerFixture, eventById, syncAll, uniq, watch } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-stream-upload-");

function chunks(n: number, size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ < n) controller.enqueue(new Uint8Array(size).fill(sent));
      else controller.close();
    },
  });
}

async function user(fetch?: FetchLike) {
  const name = uniq("streamer");
  const storeDir = join(fx.dir, name);
  const client = new MatrixClient({
    homeserverUrl: fx.hs.baseUrl,
    syncTimeoutMs: 0,
    ...(fetch ? { fetch } : {}),
    encryption: { store: { directory: storeDir } },
  });
  fx.open.push(client);
  await client.register({ username: name, password: "pw" });
  return watch(client, name, storeDir);
}

describe("streamed encrypted uploads", () => {
  it("a server that answers before reading the whole stream gets an error, not an endless wait", async () => {
    let answered!: () => void;
    const answer = new Promise<void>((resolve) => {
      answered = resolve;
    });
    const early: FetchLike = async (input, init) => {
      if (new URL(input).pathname === "/_matrix/media/v3/upload" && init.body instanceof ReadableStream) {
        await init.body.getReader().read(); // one chunk, then the answer
        answered();
        return Response.json({ content_uri: `mxc://${new URL(fx.hs.baseUrl).host}/early` });
      }
      return fetch(input, init);
    };
    const alice = await user(early);
    const roomId = await alice.client.createRoom({ name: "files" });
    let outcome: unknown = "pending";
    const sending = alice.client.sendFile(roomId, chunks(3, 1000), { filename: "big.bin", size: 3000 });
    sending.then(
      () => {
        outcome = "sent";
      },
      (e: unknown) => {
        outcome = e;
      },
    );
    await answer;
    // Event-loop turns, not time: the answer is read and sendFile settles within a few.
    for (let i = 0; i < 100 && outcome === "pending"; i++) await new Promise((r) => setImmediate(r));
    assert.ok(outcome instanceof MalformedResponseError, `sendFile: ${String(outcome)}`);
  });

  it("a streamed file, with its length or without, is sent encrypted and decrypts", async () => {
    const alice = await user();
    const roomId = await alice.client.createRoom({ name: "files" });
    for (const size of [5000, undefined]) {
      const id = await alice.client.sendFile(roomId, chunks(5, 1000), {
        filename: "f.bin",
        ...(size !== undefined ? { size } : {}),
      });
      await syncAll(alice);
      const ev = eventById(alice, id);
      assert.equal(ev.raw.type, "m.room.encrypted");
      const data = await alice.client.downloadAttachment(ev.content);
      assert.equal(data.length, 5000);
      assert.equal(data[4999], 5);
    }
  });
});
