// Media repository responses.
import * as z from "./zod.ts";

/**
 * `POST /_matrix/media/v3/upload`. The URI goes into the event we send: one that is not a valid
 * content URI would make a message no client (ours included) downloads.
 */
export const uploadResponseSchema = z.looseObject({
  content_uri: z.string().check(z.refine((s) => parseMxcUri(s) !== undefined, "not a valid mxc:// URI")),
});
export type UploadResponse = z.infer<typeof uploadResponseSchema>;

/** `GET /_matrix/client/v1/media/config`. */
export const mediaConfigResponseSchema = z.looseObject({
  "m.upload.size": z.optional(z.number().check(z.int(), z.nonnegative())),
});
export type MediaConfigResponse = z.infer<typeof mediaConfigResponseSchema>;

/** `mxc://server/mediaId`, split; undefined when not a valid content URI. */
export function parseMxcUri(uri: string): { serverName: string; mediaId: string } | undefined {
  const m = /^mxc:\/\/([A-Za-z0-9.:[\]-]+)\/([A-Za-z0-9_-]+)$/.exec(uri);
  // `.` and `..` would be dot segments in the download URL's path, which URL parsing removes.
  if (!m || m[1] === "." || m[1] === "..") return undefined;
  return { serverName: m[1]!, mediaId: m[2]! };
}
