// whoami and capabilities.
import { DEFAULT_ROOM_VERSION, SUPPORTED_ROOM_VERSIONS } from "../event-format.ts";
import type { RouteContext } from "../route-context.ts";
import { authed } from "../router.ts";

export function registerAccountRoutes({ router }: RouteContext): void {
  router.client("GET", "/account/whoami", (req) => {
    const a = authed(req);
    return { json: { user_id: a.userId, device_id: a.deviceId, is_guest: false } };
  });
  // No TURN server is configured on a devserver: the spec's answer is an empty object.
  router.client("GET", "/voip/turnServer", () => ({ json: {} }));
  router.client("GET", "/capabilities", () => ({
    json: {
      capabilities: {
        "m.room_versions": {
          default: DEFAULT_ROOM_VERSION,
          available: Object.fromEntries(SUPPORTED_ROOM_VERSIONS.map((v) => [v, "stable"])),
        },
        "m.change_password": { enabled: false },
        "m.set_displayname": { enabled: true },
        "m.set_avatar_url": { enabled: true },
        "m.3pid_changes": { enabled: false },
      },
    },
  }));
}
