// Test helper: a throwaway in-memory devserver on a free port, plus user registration and a tiny
// JSON HTTP client. `await using`-free on purpose: call `close()` in an `after`/`finally`.
import { type DevServerOptions, startDevServer } from "../../src/devserver/index.ts";

export interface TestUser {
  userId: string;
  accessToken: string;
  deviceId: string;
  password: string;
}

export interface ApiResponse {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response fields
  json: any;
  headers: Headers;
}

export interface TestDevServer {
  baseUrl: string;
  serverName: string;
  close(): Promise<void>;
  /** Registers `localpart` (random when omitted) through the UIA dummy flow and logs in. */
  register(localpart?: string, password?: string, deviceId?: string): Promise<TestUser>;
  /** Logs in again as an existing user, creating a new device. */
  login(user: TestUser, deviceId?: string): Promise<TestUser>;
  /** JSON request under `/_matrix/client/v3` unless `path` starts with `/_matrix` or `/.well-known`. */
  api(method: string, path: string, opts?: { token?: string; body?: unknown }): Promise<ApiResponse>;
}

let counter = 0;

export async function startTestDevServer(options: DevServerOptions = {}): Promise<TestDevServer> {
  const server = await startDevServer({ port: 0, memory: true, ...options });
  const api = async (
    method: string,
    path: string,
    opts: { token?: string; body?: unknown } = {},
  ): Promise<ApiResponse> => {
    const url =
      path.startsWith("/_matrix") || path.startsWith("/.well-known") ? path : `/_matrix/client/v3${path}`;
    const headers: Record<string, string> = {};
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(server.baseUrl + url, {
      method,
      headers,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text.length > 0 ? JSON.parse(text) : undefined, headers: res.headers };
  };
  const register = async (
    localpart?: string,
    password = "password",
    deviceId?: string,
  ): Promise<TestUser> => {
    counter += 1;
    const username = localpart ?? `user${counter}_${Date.now().toString(36)}`;
    const res = await api("POST", "/register", {
      body: {
        username,
        password,
        auth: { type: "m.login.dummy" },
        ...(deviceId ? { device_id: deviceId } : {}),
      },
    });
    if (res.status !== 200) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.json)}`);
    return {
      userId: res.json.user_id,
      accessToken: res.json.access_token,
      deviceId: res.json.device_id,
      password,
    };
  };
  const login = async (user: TestUser, deviceId?: string): Promise<TestUser> => {
    const res = await api("POST", "/login", {
      body: {
        type: "m.login.password",
        identifier: { type: "m.id.user", user: user.userId },
        password: user.password,
        ...(deviceId ? { device_id: deviceId } : {}),
      },
    });
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.json)}`);
    return { ...user, accessToken: res.json.access_token, deviceId: res.json.device_id };
  };
  return {
    baseUrl: server.baseUrl,
    serverName: server.serverName,
    close: () => server.close(),
    register,
    login,
    api,
  };
}
