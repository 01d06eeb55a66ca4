// What the HTTP front hands every route module, and the body limits both of them apply.
import type { Homeserver } from "./homeserver.ts";
import type { Router } from "./router.ts";
import type { Uia } from "./uia.ts";

/** Largest JSON request body accepted. */
export const MAX_JSON_BODY_BYTES = 10 * 1024 * 1024;
/**
 * Largest body of a request without a valid access token (login, registration, refresh: small
 * JSON). Bodies are read whole before the handler runs, so anyone who can connect could otherwise
 * make the server hold MAX_JSON_BODY_BYTES per request.
 */
export const MAX_UNAUTHENTICATED_BODY_BYTES = 64 * 1024;
/** Largest media upload accepted (also advertised by the media config endpoint). */
export const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;

/** Everything route modules need. */
export interface RouteContext {
  hs: Homeserver;
  router: Router;
  uia: Uia;
  baseUrl: () => string;
}
