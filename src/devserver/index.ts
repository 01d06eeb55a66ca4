export { type MatrixErrcode, MatrixError } from "./errors.ts";
export type { RateLimitConfig } from "./homeserver.ts";
export { MAX_JSON_BODY_BYTES, MAX_UPLOAD_BYTES } from "./route-context.ts";
export { type DevServer, type DevServerOptions, startDevServer } from "./server.ts";
export { StorageError } from "./storage/index.ts";
