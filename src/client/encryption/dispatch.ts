// The one place the E2EE engine's requests meet the network: an exhaustive switch over the
// request union, each case one endpoint. The response body goes back to the engine untouched;
// the engine validates it.
import type { OutgoingRequest } from "../../e2ee/index.ts";
import { jsonObjectSchema } from "../../wire/index.ts";
import { type HttpClient, path } from "../http.ts";

/** Sends one request from `OlmMachine.outgoingRequests()` (or a share / claim) and returns its JSON body. */
export async function sendOutgoingRequest(http: HttpClient, request: OutgoingRequest): Promise<unknown> {
  switch (request.type) {
    case "keys_upload":
      return http.request({
        method: "POST",
        path: path`/_matrix/client/v3/keys/upload`,
        body: request.body,
        schema: jsonObjectSchema,
      });
    case "keys_query":
      return http.request({
        method: "POST",
        path: path`/_matrix/client/v3/keys/query`,
        body: request.body,
        schema: jsonObjectSchema,
      });
    case "keys_claim":
      return http.request({
        method: "POST",
        path: path`/_matrix/client/v3/keys/claim`,
        body: request.body,
        schema: jsonObjectSchema,
      });
    case "to_device": {
      // The request ID is the transaction ID: a retry after a lost response is deduplicated.
      const { eventType, id } = request;
      return http.request({
        method: "PUT",
        path: path`/_matrix/client/v3/sendToDevice/${eventType}/${id}`,
        body: request.body,
        schema: jsonObjectSchema,
      });
    }
    case "signature_upload":
      return http.request({
        method: "POST",
        path: path`/_matrix/client/v3/keys/signatures/upload`,
        body: request.body,
        schema: jsonObjectSchema,
      });
    default:
      return unreachable(request);
  }
}

function unreachable(request: never): never {
  // Only reachable if a new request type is added without a case above.
  throw new TypeError(`unknown outgoing request type ${String((request as { type?: unknown }).type)}`);
}
