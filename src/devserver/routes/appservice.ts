// The appservice ping (`POST /_matrix/client/v1/appservice/{appserviceId}/ping`, Matrix 1.7): with
// its `as_token`, an appservice asks the devserver to call its `/_matrix/app/v1/ping` (with the
// `hs_token` and the optional `transaction_id`), and learns whether that worked and how long it took.
import { performance } from "node:perf_hooks";
import * as z from "../../wire/zod.ts";
import { forbidden, MatrixError } from "../errors.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody } from "../router.ts";

/** How long the appservice may take to answer a ping. */
export const PING_TIMEOUT_MS = 30_000;
/** Most bytes of a failed ping's answer passed back (as `body`) to help debugging. */
export const MAX_PING_ERROR_BODY_BYTES = 4096;

const pingSchema = z.looseObject({ transaction_id: z.optional(z.string()) });

export function registerAppserviceRoutes({ hs, router }: RouteContext): void {
  router.add("POST", "/_matrix/client/v1/appservice/:appserviceId/ping", async (req) => {
    const a = authed(req);
    const as = hs.appservices.list.find((x) => x.reg.id === a.appserviceId);
    if (as === undefined || as.reg.id !== req.params.appserviceId) {
      throw forbidden("Provided access token is not the appservice's as_token");
    }
    const body = jsonBody(req, pingSchema);
    if (as.reg.url === null) {
      throw new MatrixError(400, "M_URL_NOT_SET", "Application service doesn't have a URL configured");
    }
    const url = `${as.reg.url.replace(/\/+$/, "")}/_matrix/app/v1/ping`;
    const timeout = AbortSignal.timeout(PING_TIMEOUT_MS);
    const started = performance.now();
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { Authorization: `Bearer ${as.reg.hs_token}`, "Content-Type": "application/json" },
        body: JSON.stringify(
          body.transaction_id === undefined ? {} : { transaction_id: body.transaction_id },
        ),
        signal: AbortSignal.any([req.signal, timeout]),
      });
    } catch {
      if (timeout.aborted) throw new MatrixError(504, "M_CONNECTION_TIMEOUT", "Ping timed out");
      throw new MatrixError(502, "M_CONNECTION_FAILED", "Ping could not reach the application service");
    }
    const text = await boundedText(res);
    const durationMs = Math.max(0, Math.round(performance.now() - started));
    if (!res.ok) {
      throw new MatrixError(502, "M_BAD_STATUS", `Ping returned status ${res.status}`, {
        status: res.status,
        body: text,
      });
    }
    return { json: { duration_ms: durationMs } };
  });
}

/** The first MAX_PING_ERROR_BODY_BYTES of an answer (the rest is not read); "" if it fails. */
async function boundedText(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (reader === undefined) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_PING_ERROR_BODY_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // A broken answer: what arrived is enough for a debugging hint.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const all = Buffer.concat(chunks).subarray(0, MAX_PING_ERROR_BODY_BYTES);
  return new TextDecoder("utf-8", { fatal: false }).decode(all);
}
