// Attachments open from blob: URLs, which share this page's origin: a blob typed text/html or
// image/svg+xml that the person opens in a tab would run the sender's script with access to the
// page's IndexedDB, encryption keys included. Only types that cannot run script keep their type.

/** Types a blob may carry as the sender gave them: images, audio and video a browser plays, plain text. */
const INERT_TYPES: ReadonlySet<string> = new Set([
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "image/avif",
  "image/apng",
  "video/mp4",
  "video/webm",
  "video/ogg",
  "audio/mpeg",
  "audio/ogg",
  "audio/wav",
  "audio/webm",
  "audio/mp4",
  "audio/aac",
  "audio/flac",
  "text/plain",
]);

/** The type to give a blob of a received file whose sender said `claimed`. */
export function blobType(claimed: unknown): string {
  const type = typeof claimed === "string" ? (claimed.split(";")[0] ?? "").trim().toLowerCase() : "";
  return INERT_TYPES.has(type) ? type : "application/octet-stream";
}
