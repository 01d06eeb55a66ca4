// Homeserver discovery (spec: Server Discovery, `.well-known/matrix/client`): from a user ID or a
// server name to a base URL, which is then checked to really speak the Client-Server API.
import { type VersionsResponse, versionsResponseSchema, wellKnownClientSchema } from "../wire/index.ts";
import { ClientError, MalformedResponseError, MatrixError, NetworkError } from "./errors.ts";
import { type FetchLike, HttpClient, normalizeBaseUrl, path } from "./http.ts";
import type { Logger } from "./logger.ts";

export interface DiscoveryOptions {
  fetch?: FetchLike;
  logger?: Logger;
  /** Scheme for the well-known lookup; "http" only for local development and tests. */
  scheme?: "https" | "http";
}

export interface DiscoveredHomeserver {
  baseUrl: string;
  versions: VersionsResponse;
}

/** `@alice:example.org` → `example.org`; `example.org:8448` stays as is. */
export function serverNameOf(userIdOrServerName: string): string {
  if (userIdOrServerName.startsWith("@")) {
    const i = userIdOrServerName.indexOf(":");
    if (i < 0) throw new ClientError("INVALID_ARGUMENT", "a user ID has the form @localpart:server");
    return userIdOrServerName.slice(i + 1);
  }
  return userIdOrServerName;
}

/** Confirms that `baseUrl` answers `/_matrix/client/versions`; returns its versions. */
export async function checkHomeserver(
  baseUrl: string,
  opts: DiscoveryOptions = {},
): Promise<VersionsResponse> {
  const http = new HttpClient({
    baseUrl,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  try {
    return await http.request({
      method: "GET",
      path: path`/_matrix/client/versions`,
      auth: false,
      schema: versionsResponseSchema,
    });
  } catch (err) {
    throw new ClientError(
      "DISCOVERY_FAILED",
      `${http.baseUrl} is not a Matrix homeserver (versions check failed)`,
      {
        cause: err,
      },
    );
  }
}

/**
 * Resolves a homeserver URL, user ID or server name to a validated base URL. A URL is used as given;
 * otherwise the server's well-known document is consulted (404 means "use the server name itself").
 */
export async function discoverHomeserver(
  input: string,
  opts: DiscoveryOptions = {},
): Promise<DiscoveredHomeserver> {
  if (/^https?:\/\//i.test(input)) {
    const baseUrl = normalizeBaseUrl(input);
    return { baseUrl, versions: await checkHomeserver(baseUrl, opts) };
  }
  const serverName = serverNameOf(input);
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(serverName)) {
    throw new ClientError("INVALID_ARGUMENT", "invalid server name");
  }
  const origin = `${opts.scheme ?? "https"}://${serverName}`;
  const http = new HttpClient({
    baseUrl: origin,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  let baseUrl: string;
  try {
    const wk = await http.request({
      method: "GET",
      path: path`/.well-known/matrix/client`,
      auth: false,
      schema: wellKnownClientSchema,
      timeoutMs: 15_000,
    });
    try {
      baseUrl = normalizeBaseUrl(wk["m.homeserver"].base_url);
    } catch {
      throw new ClientError("DISCOVERY_FAILED", "well-known m.homeserver.base_url is not an http(s) URL");
    }
  } catch (err) {
    if (err instanceof MatrixError && err.httpStatus === 404) {
      baseUrl = http.baseUrl;
    } else if (err instanceof ClientError) {
      throw err;
    } else if (
      err instanceof MalformedResponseError ||
      err instanceof MatrixError ||
      err instanceof NetworkError
    ) {
      throw new ClientError(
        "DISCOVERY_FAILED",
        `well-known lookup for ${serverName} failed: ${err.message}`,
        {
          cause: err,
        },
      );
    } else throw err;
  }
  return { baseUrl, versions: await checkHomeserver(baseUrl, opts) };
}
