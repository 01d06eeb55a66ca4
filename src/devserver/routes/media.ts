// Media repository: upload, download, thumbnail (the original image) and config, under the legacy
// /_matrix/media paths and the authenticated /_matrix/client/v1/media paths.
import { MatrixError, notFound } from "../errors.ts";
import { type Homeserver, MAX_MEDIA_BYTES_PER_USER, randomId } from "../homeserver.ts";
import { MAX_UPLOAD_BYTES, type RouteContext } from "../route-context.ts";
import { authed, type Handler, type RouteRequest } from "../router.ts";

/** How long an mxc URI reserved with /create waits for its upload. */
export const PENDING_UPLOAD_TTL_MS = 24 * 60 * 60_000;
/** Most reserved-but-not-uploaded media IDs one user may hold. */
export const MAX_PENDING_UPLOADS = 100;

/** Types browsers may render inline; everything else downloads as an attachment. */
const INLINE_TYPES = new Set([
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "image/apng",
  "image/avif",
  "video/mp4",
  "video/webm",
  "audio/mpeg",
  "audio/ogg",
  "audio/wav",
  "audio/webm",
  "text/plain",
]);

/** The types a thumbnail may have (spec: its Content-Type); the devserver thumbnails only these. */
const THUMBNAIL_TYPES = new Set(["image/jpeg", "image/png", "image/apng", "image/gif", "image/webp"]);

function contentDisposition(contentType: string, filename: string | null): string {
  const kind = INLINE_TYPES.has(contentType.split(";")[0]!.trim()) ? "inline" : "attachment";
  return filename ? `${kind}; filename*=utf-8''${encodeURIComponent(filename)}` : kind;
}

/** Refuses an upload that would take `uploader` past their media bound (413 M_TOO_LARGE). */
function checkMediaQuota(hs: Homeserver, uploader: string, bytes: number): void {
  const limit = hs.config.maxMediaBytesPerUser ?? MAX_MEDIA_BYTES_PER_USER;
  if (hs.misc.mediaBytesOf(uploader) + bytes > limit) {
    throw new MatrixError(413, "M_TOO_LARGE", `A user may store at most ${limit} bytes of media`);
  }
}

export function registerMediaRoutes({ hs, router }: RouteContext): void {
  const upload: Handler = (req) => {
    const a = authed(req);
    const contentType = req.headers["content-type"] ?? "application/octet-stream";
    const filename = req.query.get("filename");
    checkMediaQuota(hs, a.userId, req.rawBody.length);
    const mediaId = randomId(18);
    hs.misc.putMedia({
      media_id: mediaId,
      uploader: a.userId,
      content_type: contentType,
      filename,
      bytes: req.rawBody,
    });
    return { json: { content_uri: `mxc://${hs.serverName}/${mediaId}` } };
  };
  // Asynchronous upload (spec v1.7): reserve an mxc URI now, PUT the bytes later.
  const create: Handler = (req) => {
    const a = authed(req);
    const now = Date.now();
    if (hs.misc.countPendingMedia(a.userId, now) >= MAX_PENDING_UPLOADS) {
      throw new MatrixError(429, "M_LIMIT_EXCEEDED", "Too many pending uploads", {
        retry_after_ms: PENDING_UPLOAD_TTL_MS,
      });
    }
    const mediaId = randomId(18);
    const expires = now + PENDING_UPLOAD_TTL_MS;
    hs.misc.reserveMedia(mediaId, a.userId, expires);
    return { json: { content_uri: `mxc://${hs.serverName}/${mediaId}`, unused_expires_at: expires } };
  };
  const uploadTo: Handler = (req) => {
    const a = authed(req);
    if (req.params.server !== hs.serverName) throw notFound("Not a media ID of this server");
    const mediaId = req.params.media!;
    if (hs.misc.getMedia(mediaId)) {
      throw new MatrixError(409, "M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded");
    }
    const pending = hs.misc.pendingMedia(mediaId);
    if (!pending || pending.expires_ts < Date.now()) throw notFound("Unknown or expired media ID");
    if (pending.uploader !== a.userId) throw new MatrixError(403, "M_FORBIDDEN", "Reserved by another user");
    checkMediaQuota(hs, a.userId, req.rawBody.length);
    hs.tx(() => {
      hs.misc.putMedia({
        media_id: mediaId,
        uploader: a.userId,
        content_type: req.headers["content-type"] ?? "application/octet-stream",
        filename: req.query.get("filename"),
        bytes: req.rawBody,
      });
      hs.misc.deletePendingMedia(mediaId);
    });
    return { json: {} };
  };

  const download = (req: RouteRequest) => {
    if (req.params.server !== hs.serverName) throw notFound("Remote media is not available (no federation)");
    const m = hs.misc.getMedia(req.params.media!);
    if (!m) {
      const pending = hs.misc.pendingMedia(req.params.media!);
      if (pending && pending.expires_ts >= Date.now()) {
        throw new MatrixError(504, "M_NOT_YET_UPLOADED", "Media has not been uploaded yet");
      }
      throw notFound("Not found");
    }
    const filename = req.params.filename ?? m.filename;
    return {
      bytes: Buffer.from(m.bytes),
      contentType: m.content_type,
      headers: {
        "Content-Disposition": contentDisposition(m.content_type, filename),
        "Content-Security-Policy":
          "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Cache-Control": "public, max-age=86400, immutable",
      },
    };
  };
  const config: Handler = () => ({ json: { "m.upload.size": MAX_UPLOAD_BYTES } });
  // A thumbnail is the original image itself (this server has no image pipeline, and the spec lets
  // it answer larger than asked): only for the image types a thumbnail may have, `inline`. Other
  // media (an encrypted file's ciphertext among them) cannot be thumbnailed: 400, as the spec says.
  const thumbnail = (req: RouteRequest) => {
    for (const p of ["width", "height"]) {
      const v = req.query.get(p);
      if (v === null || !/^\d{1,6}$/.test(v))
        throw new MatrixError(400, "M_MISSING_PARAM", `${p} is required`);
    }
    const method = req.query.get("method");
    if (method !== null && method !== "crop" && method !== "scale") {
      throw new MatrixError(400, "M_INVALID_PARAM", 'method must be "crop" or "scale"');
    }
    const animated = req.query.get("animated");
    if (animated !== null && animated !== "true" && animated !== "false") {
      throw new MatrixError(400, "M_INVALID_PARAM", "animated must be true or false");
    }
    const original = download(req);
    const type = original.contentType.split(";")[0]!.trim().toLowerCase();
    if (!THUMBNAIL_TYPES.has(type)) {
      throw new MatrixError(400, "M_UNKNOWN", "Cannot generate thumbnails for the requested content");
    }
    return {
      ...original,
      contentType: type,
      headers: {
        ...original.headers,
        "Content-Disposition": `inline; filename="thumbnail.${type.split("/")[1]}"`,
      },
    };
  };

  router.add("POST", "/_matrix/media/v1/create", create);
  router.add("PUT", "/_matrix/media/v3/upload/:server/:media", uploadTo);
  for (const prefix of ["/_matrix/media/v3", "/_matrix/media/r0"]) {
    router.add("POST", `${prefix}/upload`, upload);
    router.add("GET", `${prefix}/config`, config);
    // Legacy unauthenticated downloads, still used by older clients.
    router.add("GET", `${prefix}/download/:server/:media`, download, "none");
    router.add("GET", `${prefix}/download/:server/:media/:filename`, download, "none");
    router.add("GET", `${prefix}/thumbnail/:server/:media`, thumbnail, "none");
  }
  router.add("GET", "/_matrix/client/v1/media/config", config);
  router.add("GET", "/_matrix/client/v1/media/download/:server/:media", download);
  router.add("GET", "/_matrix/client/v1/media/download/:server/:media/:filename", download);
  router.add("GET", "/_matrix/client/v1/media/thumbnail/:server/:media", thumbnail);
}
