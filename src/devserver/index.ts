export { type MatrixErrcode, MatrixError } from "./errors.ts";
export type { RateLimitConfig } from "./homeserver.ts";
export {
  type DevServer,
  type DevServerOptions,
  MAX_JSON_BODY_BYTES,
  MAX_UPLOAD_BYTES,
  startDevServer,
} from "./server.ts";
export { StorageError } from "./storage/index.ts";
