// Media repository: upload, download, thumbnail (the original) and config, under the legacy
// /_matrix/media paths and the authenticated /_matrix/client/v1/media paths.
import { MatrixError, notFound } from "../errors.ts";
import { randomId } from "../homeserver.ts";
import { authed, type Handler, type RouteRequest } from "../router.ts";
import { MAX_UPLOAD_BYTES, type RouteContext } from "../server.ts";

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

function contentDisposition(contentType: string, filename: string | null): string {
  const kind = INLINE_TYPES.has(contentType.split(";")[0]!.trim()) ? "inline" : "attachment";
  return filename ? `${kind}; filename*=utf-8''${encodeURIComponent(filename)}` : kind;
}

export function registerMediaRoutes({ hs, router }: RouteContext): void {
  const upload: Handler = (req) => {
    const a = authed(req);
    const contentType = req.headers["content-type"] ?? "application/octet-stream";
    const filename = req.query.get("filename");
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
  const download = (req: RouteRequest) => {
    if (req.params.server !== hs.serverName) throw notFound("Remote media is not available (no federation)");
    const m = hs.misc.getMedia(req.params.media!);
    if (!m) throw notFound("Not found");
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
  const checkThumbnailParams = (req: RouteRequest) => {
    for (const p of ["width", "height"]) {
      const v = req.query.get(p);
      if (v === null || !/^\d{1,6}$/.test(v))
        throw new MatrixError(400, "M_MISSING_PARAM", `${p} is required`);
    }
    // Returning the original is allowed: this server has no image pipeline.
    return download(req);
  };

  for (const prefix of ["/_matrix/media/v3", "/_matrix/media/r0"]) {
    router.add("POST", `${prefix}/upload`, upload);
    router.add("GET", `${prefix}/config`, config);
    // Legacy unauthenticated downloads, still used by older clients.
    router.add("GET", `${prefix}/download/:server/:media`, download, "none");
    router.add("GET", `${prefix}/download/:server/:media/:filename`, download, "none");
    router.add("GET", `${prefix}/thumbnail/:server/:media`, checkThumbnailParams, "none");
  }
  router.add("GET", "/_matrix/client/v1/media/config", config);
  router.add("GET", "/_matrix/client/v1/media/download/:server/:media", download);
  router.add("GET", "/_matrix/client/v1/media/download/:server/:media/:filename", download);
  router.add("GET", "/_matrix/client/v1/media/thumbnail/:server/:media", checkThumbnailParams);
}
