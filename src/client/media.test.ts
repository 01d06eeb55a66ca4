import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { ClientError, MalformedResponseError, MatrixError, NetworkError } from "./errors.ts";
import { HttpClient } from "./http.ts";
import {
  MAX_MEDIA_FILENAME_LENGTH,
  MEDIA_TIMEOUT_MS,
  MediaApi,
  sanitizeFilename,
  UPLOAD_TIMEOUT_BYTES_PER_SECOND,
} from "./media.ts";

function media(respond: (url: string, init: RequestInit) => Response) {
  const seen: { url: string; auth: string | undefined }[] = [];
  const http = new HttpClient({
    baseUrl: "https://hs",
    accessToken: () => "tok",
    fetch: async (url, init) => {
      seen.push({ url, auth: (init.headers as Record<string, string>).Authorization });
      return respond(url, init);
    },
  });
  return { api: new MediaApi(http), seen };
}
const bytes = (n: number) =>
  new Response(new Uint8Array(n).fill(7), { status: 200, headers: { "content-type": "image/png" } });

describe("MediaApi", () => {
  it("uses authenticated media first and remembers it", async () => {
    const { api, seen } = media(() => bytes(4));
    const got = await api.download("mxc://hs.example/abc");
    assert.deepEqual(got.data, new Uint8Array(4).fill(7));
    assert.equal(got.contentType, "image/png");
    await api.download("mxc://hs.example/abc");
    assert.deepEqual(
      seen.map((s) => [s.url, s.auth]),
      [
        ["https://hs/_matrix/client/v1/media/download/hs.example/abc", "Bearer tok"],
        ["https://hs/_matrix/client/v1/media/download/hs.example/abc", "Bearer tok"],
      ],
    );
  });

  it("falls back to /_matrix/media/v3 (without the token) on servers without authenticated media", async () => {
    const { api, seen } = media((url) =>
      url.includes("/client/v1/")
        ? new Response(JSON.stringify({ errcode: "M_UNRECOGNIZED" }), { status: 404 })
        : bytes(2),
    );
    await api.download("mxc://hs.example/abc");
    await api.download("mxc://hs.example/def");
    assert.deepEqual(
      seen.map((s) => [s.url, s.auth]),
      [
        ["https://hs/_matrix/client/v1/media/download/hs.example/abc", "Bearer tok"],
        ["https://hs/_matrix/media/v3/download/hs.example/abc", undefined],
        ["https://hs/_matrix/media/v3/download/hs.example/def", undefined],
      ],
    );
  });

  it("once authenticated media answered, a bare 404 does not send later downloads to the legacy endpoint", async () => {
    let call = 0;
    const { api, seen } = media(() => (++call === 2 ? new Response("not found", { status: 404 }) : bytes(1)));
    await api.download("mxc://hs.example/a");
    await assert.rejects(api.download("mxc://hs.example/b"), (e: unknown) => e instanceof MatrixError);
    await api.download("mxc://hs.example/c");
    assert.deepEqual(
      seen.map((s) => s.url),
      ["a", "b", "c"].map((id) => `https://hs/_matrix/client/v1/media/download/hs.example/${id}`),
    );
  });

  it("a bare 404 from both endpoints leaves the choice open for the next download", async () => {
    let call = 0;
    const { api, seen } = media(() => (++call <= 2 ? new Response("", { status: 404 }) : bytes(1)));
    await assert.rejects(api.download("mxc://hs.example/a"), (e: unknown) => e instanceof MatrixError);
    await api.download("mxc://hs.example/b");
    assert.deepEqual(
      seen.map((s) => s.url),
      [
        "https://hs/_matrix/client/v1/media/download/hs.example/a",
        "https://hs/_matrix/media/v3/download/hs.example/a",
        "https://hs/_matrix/client/v1/media/download/hs.example/b",
      ],
    );
  });

  it("thumbnails: the authenticated endpoint with width, height, method and animated; legacy fallback as for downloads", async () => {
    const { api, seen } = media(() => bytes(3));
    const got = await api.thumbnail("mxc://hs.example/abc", {
      width: 96,
      height: 64,
      method: "crop",
      animated: true,
    });
    assert.deepEqual(got.data, new Uint8Array(3).fill(7));
    await api.thumbnail("mxc://hs.example/abc", { width: 32, height: 32 });
    assert.deepEqual(
      seen.map((s) => [s.url, s.auth]),
      [
        [
          "https://hs/_matrix/client/v1/media/thumbnail/hs.example/abc?width=96&height=64&method=crop&animated=true",
          "Bearer tok",
        ],
        ["https://hs/_matrix/client/v1/media/thumbnail/hs.example/abc?width=32&height=32", "Bearer tok"],
      ],
    );

    // A server without authenticated media: the legacy endpoint, without the token, remembered for
    // downloads too (one answer about the server, whichever endpoint asked).
    const legacy = media((url) =>
      url.includes("/client/v1/")
        ? new Response(JSON.stringify({ errcode: "M_UNRECOGNIZED" }), { status: 404 })
        : bytes(2),
    );
    await legacy.api.thumbnail("mxc://hs.example/abc", { width: 8, height: 8, method: "scale" });
    await legacy.api.download("mxc://hs.example/def");
    assert.deepEqual(
      legacy.seen.map((s) => [s.url, s.auth]),
      [
        [
          "https://hs/_matrix/client/v1/media/thumbnail/hs.example/abc?width=8&height=8&method=scale",
          "Bearer tok",
        ],
        ["https://hs/_matrix/media/v3/thumbnail/hs.example/abc?width=8&height=8&method=scale", undefined],
        ["https://hs/_matrix/media/v3/download/hs.example/def", undefined],
      ],
    );

    // Once authenticated media answered, a thumbnail's bare 404 is an answer, not a fallback.
    let call = 0;
    const answered = media(() => (++call === 2 ? new Response("", { status: 404 }) : bytes(1)));
    await answered.api.download("mxc://hs.example/a");
    await assert.rejects(
      answered.api.thumbnail("mxc://hs.example/b", { width: 8, height: 8 }),
      (e: unknown) => e instanceof MatrixError && e.httpStatus === 404,
    );
    assert.equal(answered.seen.length, 2);

    // Sizes beyond the limit are refused like downloads.
    await assert.rejects(
      api.thumbnail("mxc://hs.example/abc", { width: 8, height: 8, maxBytes: 2 }),
      (e: unknown) => e instanceof ClientError && e.code === "TOO_LARGE",
    );
  });

  it("thumbnails: sizes, methods and URIs the spec does not allow are refused before any request", async () => {
    const { api, seen } = media(() => bytes(1));
    const bad: [string, { width: number; height: number; method?: "crop" | "scale"; animated?: boolean }][] =
      [
        ["mxc://hs.example/abc", { width: 0, height: 8 }],
        ["mxc://hs.example/abc", { width: 8, height: -8 }],
        ["mxc://hs.example/abc", { width: 8.5, height: 8 }],
        ["mxc://hs.example/abc", { width: Number.POSITIVE_INFINITY, height: 8 }],
        ["mxc://hs.example/abc", { width: "8" as unknown as number, height: 8 }],
        ["mxc://hs.example/abc", { width: 8, height: 8, method: "fit" as "crop" }],
        ["mxc://hs.example/abc", { width: 8, height: 8, animated: 1 as unknown as boolean }],
        ["mxc://hs/../etc", { width: 8, height: 8 }],
      ];
    for (const [uri, opts] of bad) {
      await assert.rejects(
        api.thumbnail(uri, opts),
        (e: unknown) => e instanceof ClientError && e.code === "INVALID_ARGUMENT",
        JSON.stringify(opts),
      );
    }
    assert.deepEqual(seen, []);
  });

  it("does not fall back on a real not-found", async () => {
    const { api, seen } = media(
      () => new Response(JSON.stringify({ errcode: "M_NOT_FOUND" }), { status: 404 }),
    );
    await assert.rejects(
      api.download("mxc://hs.example/abc"),
      (e: unknown) => e instanceof MatrixError && e.errcode === "M_NOT_FOUND",
    );
    assert.equal(seen.length, 1);
  });

  it("refuses bad mxc URIs and oversized bodies", async () => {
    const { api, seen } = media(() => bytes(100));
    for (const bad of ["https://x/y", "mxc://hs/../etc", "mxc://hs/a/b", "mxc://"]) {
      await assert.rejects(
        api.download(bad),
        (e: unknown) => e instanceof ClientError && e.code === "INVALID_ARGUMENT",
      );
    }
    assert.equal(seen.length, 0);
    await assert.rejects(
      api.download("mxc://hs/abc", { maxBytes: 99 }),
      (e: unknown) => e instanceof ClientError && e.code === "TOO_LARGE",
    );
  });

  it("gives the server's file name sanitised: no path separators, controls or bidi controls, bounded", async () => {
    const cases: [string, string | undefined][] = [
      ["attachment; filename*=utf-8''..%2F..%2Fetc%2Fpasswd", ".._.._etc_passwd"],
      ['attachment; filename="..\\evil.exe"', ".._evil.exe"],
      ["attachment; filename*=utf-8''a%00b%0Ac%1B%7F%C2%85d.txt", "abcd.txt"],
      ["attachment; filename*=utf-8''photo%E2%80%AEgpj.exe", "photogpj.exe"],
      ["attachment; filename*=utf-8''%E2%80%AE..%0A", undefined],
      ["attachment; filename*=utf-8''%ED%A0%80.png", undefined],
      ["inline; FILENAME*=UTF-8''%F0%9F%98%80.png", "\u{1F600}.png"],
      ['inline; filename="  plain.txt  "', "plain.txt"],
      [`attachment; filename*=utf-8''${"a".repeat(254)}%F0%9F%98%80`, "a".repeat(254)],
      [`attachment; filename="${"b".repeat(300)}"`, "b".repeat(MAX_MEDIA_FILENAME_LENGTH)],
    ];
    for (const [disposition, expected] of cases) {
      const { api } = media(
        () =>
          new Response(new Uint8Array(1), {
            headers: { "content-type": "image/png", "content-disposition": disposition },
          }),
      );
      const got = await api.download("mxc://hs.example/abc");
      assert.equal(got.filename, expected, disposition);
    }
    // Lone surrogates (which no header carries, but a caller's string may) become U+FFFD.
    assert.equal(sanitizeFilename("a\uD800b"), "a\uFFFDb");
    assert.equal(sanitizeFilename("/"), "_");
  });

  it("refuses a server name of dot segments, which would move the download to another endpoint", async () => {
    // `https://hs/_matrix/client/v1/media/download/../config` is `/_matrix/client/v1/media/config`
    // once the URL is parsed: a request to another endpoint, with the access token.
    const { api, seen } = media(() => bytes(1));
    for (const bad of ["mxc://../config", "mxc://./abc"]) {
      await assert.rejects(
        api.download(bad),
        (e: unknown) => e instanceof ClientError && e.code === "INVALID_ARGUMENT",
      );
    }
    assert.deepEqual(seen, []);
  });

  it("a body that fails part-way is a NetworkError (NETWORK, or ABORTED for the caller's abort)", async () => {
    const partial = (fail: (controller: ReadableStreamDefaultController<Uint8Array>) => void) => () =>
      new Response(
        new ReadableStream<Uint8Array>({
          start: (controller) => controller.enqueue(new Uint8Array(3)),
          pull: fail,
        }),
        { status: 200 },
      );
    // What undici gives when the server resets the connection mid-body.
    const reset = media(partial((c) => c.error(new TypeError("terminated"))));
    const err = await reset.api.download("mxc://hs/abc").catch((e: unknown) => e);
    assert.ok(err instanceof NetworkError, String(err));
    assert.equal(err.code, "NETWORK");

    const ctrl = new AbortController();
    const aborted = media((_url, init) =>
      partial((c) => {
        init.signal?.addEventListener("abort", () => c.error(new DOMException("aborted", "AbortError")));
        ctrl.abort();
      })(),
    );
    const err2 = await aborted.api.download("mxc://hs/abc", { signal: ctrl.signal }).catch((e: unknown) => e);
    assert.ok(err2 instanceof NetworkError, String(err2));
    assert.equal(err2.code, "ABORTED");
  });

  it("a streamed download is cut off by the timeout only when its body stalls, not for its length", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      // A body whose chunks the test hands out; the request's abort errors it, as fetch's would.
      let body!: ReadableStreamDefaultController<Uint8Array>;
      const { api } = media(
        (_url, init) =>
          new Response(
            new ReadableStream<Uint8Array>({
              start: (c) => {
                body = c;
                init.signal?.addEventListener("abort", () =>
                  c.error(new DOMException("aborted", "AbortError")),
                );
              },
            }),
            { status: 200 },
          ),
      );
      // Three chunks, each just inside the timeout: together far longer than it.
      const slow = await api.downloadStream("mxc://hs/slow");
      const reader = slow.stream.getReader();
      for (let i = 0; i < 3; i++) {
        mock.timers.tick(MEDIA_TIMEOUT_MS - 1);
        body.enqueue(new Uint8Array([i]));
        assert.deepEqual((await reader.read()).value, new Uint8Array([i]));
      }
      body.close();
      assert.equal((await reader.read()).done, true);

      // A body that stops arriving still times out.
      const stalled = await api.downloadStream("mxc://hs/stalled");
      const stalledReader = stalled.stream.getReader();
      body.enqueue(new Uint8Array([1]));
      await stalledReader.read();
      mock.timers.tick(MEDIA_TIMEOUT_MS);
      const err = await stalledReader.read().catch((e: unknown) => e);
      assert.ok(err instanceof NetworkError, String(err));
      assert.equal(err.code, "TIMEOUT");
    } finally {
      mock.timers.reset();
    }
  });

  it("a streamed upload is cut off by the timeout only when it stalls, not for its length", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      // The server reads the body slowly: each chunk just inside the timeout, all far longer.
      const http = new HttpClient({
        baseUrl: "https://hs",
        accessToken: () => "tok",
        fetch: async (_url, init) => {
          const reader = (init.body as ReadableStream<Uint8Array>).getReader();
          for (;;) {
            if (init.signal?.aborted) throw new DOMException("aborted", "AbortError");
            const { done } = await reader.read();
            if (done) break;
            mock.timers.tick(MEDIA_TIMEOUT_MS - 1);
          }
          return new Response(JSON.stringify({ content_uri: "mxc://hs/slow" }), { status: 200 });
        },
      });
      let sent = 0;
      const data = new ReadableStream<Uint8Array>({
        pull: (c) => (++sent > 3 ? c.close() : c.enqueue(new Uint8Array([sent]))),
      });
      assert.equal(await new MediaApi(http).upload(data), "mxc://hs/slow");

      // A server that stops reading still times out.
      const stalled = new HttpClient({
        baseUrl: "https://hs",
        fetch: async (_url, init) => {
          await (init.body as ReadableStream<Uint8Array>).getReader().read();
          mock.timers.tick(MEDIA_TIMEOUT_MS);
          if (init.signal?.aborted) throw new DOMException("aborted", "AbortError");
          return new Response(JSON.stringify({ content_uri: "mxc://hs/late" }), { status: 200 });
        },
      });
      const err = await new MediaApi(stalled)
        .upload(new Blob([new Uint8Array(3)]).stream())
        .catch((e: unknown) => e);
      assert.ok(err instanceof NetworkError, String(err));
      assert.equal(err.code, "TIMEOUT");
    } finally {
      mock.timers.reset();
    }
  });

  it("a big byte array upload gets time in proportion to its size, a small one the usual timeout", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      // The server takes `ms` to read the body (a Blob or bytes: no chunks to time).
      const slowUpload = (ms: number) =>
        new MediaApi(
          new HttpClient({
            baseUrl: "https://hs",
            fetch: async (_url, init) => {
              mock.timers.tick(ms);
              if (init.signal?.aborted) throw new DOMException("aborted", "AbortError");
              return new Response(JSON.stringify({ content_uri: "mxc://hs/big" }), { status: 200 });
            },
          }),
        );
      // 100 minutes of upload at the assumed slowest rate (the stated size; the bytes are few).
      const size = 6000 * UPLOAD_TIMEOUT_BYTES_PER_SECOND;
      const big = await slowUpload(6_000_000 - 1).upload(new Uint8Array(3), { size });
      assert.equal(big, "mxc://hs/big");
      const err = await slowUpload(MEDIA_TIMEOUT_MS)
        .upload(new Uint8Array(3))
        .catch((e: unknown) => e);
      assert.ok(err instanceof NetworkError, String(err));
      assert.equal(err.code, "TIMEOUT");
    } finally {
      mock.timers.reset();
    }
  });

  it("uploads with content type, filename and length", async () => {
    let init: RequestInit | undefined;
    let url = "";
    const http = new HttpClient({
      baseUrl: "https://hs",
      fetch: async (u, i) => {
        url = u;
        init = i;
        return new Response(JSON.stringify({ content_uri: "mxc://hs/new" }), { status: 200 });
      },
    });
    const uri = await new MediaApi(http).upload(new Uint8Array([1, 2, 3]), {
      contentType: "text/plain",
      filename: "a b.txt",
    });
    assert.equal(uri, "mxc://hs/new");
    assert.equal(url, "https://hs/_matrix/media/v3/upload?filename=a+b.txt");
    const h = init?.headers as Record<string, string>;
    assert.equal(h["Content-Type"], "text/plain");
    assert.equal(h["Content-Length"], "3");
  });

  it("refuses an upload answer whose content_uri is not a valid content URI", async () => {
    for (const uri of ["mxc://hs/../../x", "mxc://hs/a/b", "mxc://hs/", "mxc://hs/a?b"]) {
      const http = new HttpClient({
        baseUrl: "https://hs",
        fetch: async () => new Response(JSON.stringify({ content_uri: uri }), { status: 200 }),
      });
      await assert.rejects(
        new MediaApi(http).upload(new Uint8Array([1])),
        (e: unknown) => e instanceof MalformedResponseError,
        uri,
      );
    }
  });
});
