// Media upload, download and thumbnails. Downloads and thumbnails use the authenticated endpoints
// (`/_matrix/client/v1/media`, spec v1.11) and fall back to the legacy `/_matrix/media/v3` ones when
// the server does not know them; the outcome is remembered per client. Bodies can be streamed both ways.
import { parseMxcUri, uploadResponseSchema } from "../wire/index.ts";
import { ClientError, MalformedResponseError, MatrixError } from "./errors.ts";
import { type HttpClient, path, type QueryValue } from "./http.ts";
import { readStreamLimited } from "./transport.ts";

/** Default cap for `download()` (which buffers); use `downloadStream()` for anything larger. */
export const MAX_BUFFERED_DOWNLOAD_BYTES = 100 * 1024 * 1024;
/**
 * The default cap of a buffered thumbnail (the server's or an event's `info.thumbnail_file`): a
 * thumbnail is a preview, and an app shows many at once; an animated one of a few megabytes fits.
 */
export const MAX_BUFFERED_THUMBNAIL_BYTES = 20 * 1024 * 1024;
/**
 * Uploads and downloads get longer than JSON requests before timing out. A download's body and a
 * streamed upload are timed from chunk to chunk (a stall), not as a whole: a big file on a slow
 * link still gets through.
 */
export const MEDIA_TIMEOUT_MS = 10 * 60_000;

/**
 * A byte array or `Blob` upload is one exchange that cannot be timed from chunk to chunk: it gets
 * `MEDIA_TIMEOUT_MS`, or one second per this many bytes when longer (a big file on a slow link).
 */
export const UPLOAD_TIMEOUT_BYTES_PER_SECOND = 64 * 1024;

export type UploadData = Uint8Array | Blob | ReadableStream<Uint8Array>;

export interface UploadOptions {
  contentType?: string;
  filename?: string;
  /** Byte length, when known, for streams (sent as Content-Length). */
  size?: number;
  signal?: AbortSignal;
}

export interface DownloadedMedia {
  contentType: string;
  /**
   * From Content-Disposition, when the server sent one, sanitised (`sanitizeFilename`): no path
   * separators, control or bidi control characters, well-formed, at most `MAX_MEDIA_FILENAME_LENGTH`.
   * Still the server's (or uploader's) choice: do not trust its extension for the content's type.
   */
  filename?: string;
  contentLength?: number;
}

/** How the server fits the thumbnail to the size asked (spec: "Thumbnails"). */
export type ThumbnailMethod = "crop" | "scale";

export interface ThumbnailOptions {
  /** The desired width in pixels, a positive integer; the thumbnail may be larger. */
  width: number;
  /** The desired height in pixels, a positive integer; the thumbnail may be larger. */
  height: number;
  /** `crop` fills the size exactly, `scale` keeps the aspect ratio within it; the server's default when left out. */
  method?: ThumbnailMethod;
  /** Whether an animated thumbnail is wanted (spec v1.11); servers give a still one when left out. */
  animated?: boolean;
  signal?: AbortSignal;
}

export class MediaApi {
  /** Undefined until the first download tells us whether the server has authenticated media. */
  private authenticated: boolean | undefined;

  constructor(private readonly http: HttpClient) {}

  /** Uploads `data` and returns its `mxc://` URI. */
  async upload(data: UploadData, opts: UploadOptions = {}): Promise<string> {
    const size =
      opts.size ??
      (data instanceof Uint8Array ? data.byteLength : data instanceof Blob ? data.size : undefined);
    const res = await this.http.request({
      method: "POST",
      path: path`/_matrix/media/v3/upload`,
      query: { filename: opts.filename },
      rawBody: {
        data: data as BodyInit,
        contentType:
          opts.contentType ?? (data instanceof Blob && data.type ? data.type : "application/octet-stream"),
        ...(size !== undefined ? { length: size } : {}),
      },
      schema: uploadResponseSchema,
      timeoutMs:
        data instanceof ReadableStream || size === undefined
          ? MEDIA_TIMEOUT_MS
          : Math.max(MEDIA_TIMEOUT_MS, Math.ceil(size / UPLOAD_TIMEOUT_BYTES_PER_SECOND) * 1000),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return res.content_uri;
  }

  /** Streams the media at `mxcUri`. The caller must consume or cancel `stream`. */
  downloadStream(
    mxcUri: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<DownloadedMedia & { stream: ReadableStream<Uint8Array> }> {
    return this.#get("download", mxcUri, undefined, opts.signal);
  }

  /** Downloads into memory, refusing more than `maxBytes`. */
  async download(
    mxcUri: string,
    opts: { signal?: AbortSignal; maxBytes?: number } = {},
  ): Promise<DownloadedMedia & { data: Uint8Array }> {
    return buffered(await this.downloadStream(mxcUri, opts), opts.maxBytes);
  }

  /**
   * Streams a thumbnail the server makes of the media at `mxcUri` (`/_matrix/client/v1/media/thumbnail`,
   * the legacy `/_matrix/media/v3/thumbnail` on servers without authenticated media). The server
   * may answer larger than asked, or the original. It cannot thumbnail an encrypted file (it holds
   * only ciphertext): use an event's `info.thumbnail_file` (`MatrixClient.downloadAttachmentThumbnail`).
   */
  thumbnailStream(
    mxcUri: string,
    opts: ThumbnailOptions,
  ): Promise<DownloadedMedia & { stream: ReadableStream<Uint8Array> }> {
    return this.#get("thumbnail", mxcUri, thumbnailQuery(opts), opts.signal);
  }

  /** `thumbnailStream` into memory, refusing more than `maxBytes`. */
  async thumbnail(
    mxcUri: string,
    opts: ThumbnailOptions & { maxBytes?: number },
  ): Promise<DownloadedMedia & { data: Uint8Array }> {
    return buffered(await this.thumbnailStream(mxcUri, opts), opts.maxBytes ?? MAX_BUFFERED_THUMBNAIL_BYTES);
  }

  async #get(
    kind: "download" | "thumbnail",
    mxcUri: string,
    query: Record<string, QueryValue> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<DownloadedMedia & { stream: ReadableStream<Uint8Array> }> {
    const mxc = parseMxcUri(mxcUri);
    if (!mxc) throw new ClientError("INVALID_ARGUMENT", "not a valid mxc:// URI");
    const common = {
      method: "GET" as const,
      timeoutMs: MEDIA_TIMEOUT_MS,
      ...(query ? { query } : {}),
      ...(signal ? { signal } : {}),
    };
    let res: Response | undefined;
    if (this.authenticated !== false) {
      try {
        res = await this.http.requestRaw({
          ...common,
          path:
            kind === "download"
              ? path`/_matrix/client/v1/media/download/${mxc.serverName}/${mxc.mediaId}`
              : path`/_matrix/client/v1/media/thumbnail/${mxc.serverName}/${mxc.mediaId}`,
        });
        this.authenticated = true;
      } catch (err) {
        // A server that served authenticated media has it: a bare 404 later (a proxy's, or
        // missing media) is an answer, not a reason to send every later download to the
        // legacy endpoint, which such servers refuse for new media.
        if (this.authenticated === true || !isUnknownEndpoint(err)) throw err;
      }
    }
    if (!res) {
      res = await this.http.requestRaw({
        ...common,
        auth: false,
        path:
          kind === "download"
            ? path`/_matrix/media/v3/download/${mxc.serverName}/${mxc.mediaId}`
            : path`/_matrix/media/v3/thumbnail/${mxc.serverName}/${mxc.mediaId}`,
      });
      // Remembered only once the legacy endpoint answered: one odd 404 decides nothing.
      this.authenticated = false;
    }
    if (res.body === null) throw new MalformedResponseError(`GET media ${kind}`, res.status, ["empty body"]);
    const out: DownloadedMedia & { stream: ReadableStream<Uint8Array> } = {
      stream: res.body,
      contentType: res.headers.get("content-type") ?? "application/octet-stream",
    };
    const len = res.headers.get("content-length");
    if (len !== null && /^\d+$/.test(len)) out.contentLength = Number(len);
    const filename = filenameFromDisposition(res.headers.get("content-disposition"));
    if (filename !== undefined) out.filename = filename;
    return out;
  }
}

/** Reads a download into memory, refusing more than `maxBytes` (before reading, when its length says so). */
async function buffered(
  { stream, ...meta }: DownloadedMedia & { stream: ReadableStream<Uint8Array> },
  maxBytes: number | undefined,
): Promise<DownloadedMedia & { data: Uint8Array }> {
  const limit = maxBytes ?? MAX_BUFFERED_DOWNLOAD_BYTES;
  if (meta.contentLength !== undefined && meta.contentLength > limit) {
    await stream.cancel();
    throw new ClientError("TOO_LARGE", `media is ${meta.contentLength} bytes, over the ${limit}-byte limit`);
  }
  const data = await readStreamLimited(
    stream,
    limit,
    () => new ClientError("TOO_LARGE", `media exceeds the ${limit}-byte limit`),
  );
  return { ...meta, data };
}

/** The query of a thumbnail request; `INVALID_ARGUMENT` for sizes that are not positive integers. */
function thumbnailQuery(opts: ThumbnailOptions): Record<string, QueryValue> {
  for (const side of ["width", "height"] as const) {
    const v: unknown = opts[side];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      throw new ClientError("INVALID_ARGUMENT", `thumbnail ${side} must be a positive integer`);
    }
  }
  const method: unknown = opts.method;
  if (method !== undefined && method !== "crop" && method !== "scale") {
    throw new ClientError("INVALID_ARGUMENT", 'thumbnail method must be "crop" or "scale"');
  }
  const animated: unknown = opts.animated;
  if (animated !== undefined && typeof animated !== "boolean") {
    throw new ClientError("INVALID_ARGUMENT", "thumbnail animated must be a boolean");
  }
  return { width: opts.width, height: opts.height, method: opts.method, animated: opts.animated };
}

/** A server without authenticated media answers 404/405 M_UNRECOGNIZED (or a bare 404 without errcode). */
function isUnknownEndpoint(err: unknown): boolean {
  if (!(err instanceof MatrixError)) return false;
  if (err.errcode === "M_UNRECOGNIZED") return true;
  return (err.httpStatus === 404 || err.httpStatus === 405) && err.body.errcode === undefined;
}

/** Longest file name `DownloadedMedia.filename` gives, in UTF-16 code units (longer ones are cut). */
export const MAX_MEDIA_FILENAME_LENGTH = 255;

function filenameFromDisposition(h: string | null): string | undefined {
  if (!h) return undefined;
  const star = /filename\*\s*=\s*utf-8''([^;]+)/i.exec(h);
  if (star?.[1]) {
    try {
      return sanitizeFilename(decodeURIComponent(star[1].trim()));
    } catch {
      return undefined;
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(h);
  return plain?.[1] === undefined ? undefined : sanitizeFilename(plain[1]);
}

// Control characters (C0, DEL, C1) and the bidirectional controls that can make `gpj.exe` read as
// `exe.jpg`.
const UNSAFE_FILENAME_CHARS = /[\p{Cc}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/gu;

/**
 * A server's file name as one safe file name: path separators become `_`, control and bidi control
 * characters are dropped, lone surrogates become U+FFFD, the length is cut to
 * `MAX_MEDIA_FILENAME_LENGTH` (never inside a surrogate pair). Undefined when nothing usable is
 * left (empty, `.` or `..`).
 */
export function sanitizeFilename(name: string): string | undefined {
  let out = name.toWellFormed().replace(UNSAFE_FILENAME_CHARS, "").replace(/[/\\]/g, "_").trim();
  if (out.length > MAX_MEDIA_FILENAME_LENGTH) {
    out = out.slice(0, MAX_MEDIA_FILENAME_LENGTH);
    if (/[\uD800-\uDBFF]$/.test(out)) out = out.slice(0, -1);
    out = out.trimEnd();
  }
  return out === "" || out === "." || out === ".." ? undefined : out;
}

/**
 * Wraps any async iterable of bytes (a Node `Readable` such as `fs.createReadStream(path)`) as a
 * web `ReadableStream`, the stream type uploads take. Pull-based: nothing is read ahead.
 */
export function toWebStream(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      const { done, value } = await it.next();
      if (done) ctrl.close();
      else ctrl.enqueue(value instanceof Uint8Array ? value : new Uint8Array(value));
    },
    async cancel(reason) {
      await it.return?.(reason);
    },
  });
}
