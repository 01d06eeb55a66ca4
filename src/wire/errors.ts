// The standard error body of the Client-Server API.
import * as z from "./zod.ts";

/** `{ errcode, error }` plus optional extras such as `retry_after_ms` (M_LIMIT_EXCEEDED). */
export const matrixErrorBodySchema = z.looseObject({
  errcode: z.string(),
  error: z.optional(z.string()),
  retry_after_ms: z.optional(z.number().check(z.int(), z.nonnegative())),
  soft_logout: z.optional(z.boolean()),
});
export type MatrixErrorBody = z.infer<typeof matrixErrorBodySchema>;

/**
 * The Matrix error codes Keyroom names: the ones the devserver sends and the client reacts to.
 * Servers may send others; `errcode` stays a string on the way in.
 */
export const MATRIX_ERRCODES = [
  "M_FORBIDDEN",
  "M_UNKNOWN_TOKEN",
  "M_MISSING_TOKEN",
  "M_BAD_JSON",
  "M_NOT_JSON",
  "M_NOT_FOUND",
  "M_UNRECOGNIZED",
  "M_LIMIT_EXCEEDED",
  "M_UNKNOWN",
  "M_USER_IN_USE",
  "M_INVALID_USERNAME",
  "M_INVALID_PARAM",
  "M_MISSING_PARAM",
  "M_TOO_LARGE",
  "M_ROOM_IN_USE",
  "M_UNSUPPORTED_ROOM_VERSION",
  "M_BAD_STATE",
  "M_INVALID_SIGNATURE",
  "M_WRONG_ROOM_KEYS_VERSION",
  "M_USER_DEACTIVATED",
  "M_CANNOT_OVERWRITE_MEDIA",
  "M_NOT_YET_UPLOADED",
  "M_EXCLUSIVE",
  "M_UNKNOWN_DEVICE",
  // The appservice ping (`POST /_matrix/client/v1/appservice/{appserviceId}/ping`).
  "M_URL_NOT_SET",
  "M_BAD_STATUS",
  "M_CONNECTION_FAILED",
  "M_CONNECTION_TIMEOUT",
] as const;
export type MatrixErrcode = (typeof MATRIX_ERRCODES)[number];
