// Every route of the devserver, registered on one router.
import type { RouteContext } from "../route-context.ts";
import { Router } from "../router.ts";
import { registerAccountRoutes } from "./account.ts";
import { registerAccountDataRoutes } from "./account-data.ts";
import { registerAppserviceRoutes } from "./appservice.ts";
import { registerAuthRoutes } from "./auth.ts";
import { registerDehydratedDeviceRoutes } from "./dehydrated-device.ts";
import { registerDeviceRoutes } from "./devices.ts";
import { registerDirectoryRoutes } from "./directory.ts";
import { registerEventRoutes } from "./events.ts";
import { registerKeyBackupRoutes } from "./key-backup.ts";
import { registerKeyRoutes } from "./keys.ts";
import { registerMediaRoutes } from "./media.ts";
import { registerProfileRoutes } from "./profile.ts";
import { registerRoomRoutes } from "./rooms.ts";
import { registerSyncRoutes } from "./sync.ts";
import { registerToDeviceRoutes } from "./to-device.ts";

export function buildRouter(ctx: Omit<RouteContext, "router">): Router {
  const router = new Router();
  const full: RouteContext = { ...ctx, router };
  registerAuthRoutes(full);
  registerAccountRoutes(full);
  registerDeviceRoutes(full);
  registerRoomRoutes(full);
  registerEventRoutes(full);
  registerSyncRoutes(full);
  registerKeyRoutes(full);
  registerToDeviceRoutes(full);
  registerDehydratedDeviceRoutes(full);
  registerKeyBackupRoutes(full);
  registerAccountDataRoutes(full);
  registerMediaRoutes(full);
  registerProfileRoutes(full);
  registerDirectoryRoutes(full);
  registerAppserviceRoutes(full);
  return router;
}
