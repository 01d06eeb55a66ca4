// The logged-in account's own data on the server: global and per-room account data, profile, whoami.
import {
  emptyResponseSchema,
  type JsonObject,
  profileResponseSchema,
  type WhoamiResponse,
  whoamiResponseSchema,
} from "../wire/index.ts";
import type { ApiCall } from "./call.ts";
import { path } from "./http.ts";
import { assertSendable } from "./rooms/content.ts";
import type { SyncedState } from "./sync/state.ts";

export interface AccountHost {
  readonly call: ApiCall;
  readonly synced: SyncedState;
  /** The logged-in user (throws when there is none). */
  userId(): string;
}

export class AccountApi {
  readonly #host: AccountHost;

  constructor(host: AccountHost) {
    this.#host = host;
  }

  async whoami(): Promise<WhoamiResponse> {
    this.#host.userId();
    return this.#host.call(
      { method: "GET", path: path`/_matrix/client/v3/account/whoami`, schema: whoamiResponseSchema },
      true,
    );
  }

  getAccountData(type: string): JsonObject | undefined {
    return this.#host.synced.accountDataContent(type);
  }

  async setAccountData(type: string, content: JsonObject): Promise<void> {
    assertSendable(content, "account data");
    const userId = this.#host.userId();
    await this.#host.call({
      method: "PUT",
      path: path`/_matrix/client/v3/user/${userId}/account_data/${type}`,
      body: content,
      schema: emptyResponseSchema,
    });
    this.#host.synced.accountData.set(type, { type, content });
  }

  async setRoomAccountData(roomId: string, type: string, content: JsonObject): Promise<void> {
    assertSendable(content, "account data");
    const userId = this.#host.userId();
    await this.#host.call({
      method: "PUT",
      path: path`/_matrix/client/v3/user/${userId}/rooms/${roomId}/account_data/${type}`,
      body: content,
      schema: emptyResponseSchema,
    });
  }

  /** A user's global display name and avatar. */
  async getProfile(userId: string): Promise<{ displayName?: string; avatarUrl?: string }> {
    const res = await this.#host.call(
      { method: "GET", path: path`/_matrix/client/v3/profile/${userId}`, schema: profileResponseSchema },
      true,
    );
    const out: { displayName?: string; avatarUrl?: string } = {};
    if (typeof res.displayname === "string") out.displayName = res.displayname;
    if (typeof res.avatar_url === "string") out.avatarUrl = res.avatar_url;
    return out;
  }

  async setDisplayName(displayName: string): Promise<void> {
    const userId = this.#host.userId();
    await this.#host.call({
      method: "PUT",
      path: path`/_matrix/client/v3/profile/${userId}/displayname`,
      body: { displayname: displayName },
      schema: emptyResponseSchema,
    });
  }
}
