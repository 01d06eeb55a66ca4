export * from "./auth.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./json.ts";
export * from "./keys.ts";
export * from "./media.ts";
export * from "./rooms.ts";
export * from "./sync.ts";
