// The `keyroom` entry point on Node (the package's `node` condition): the client API, plus the client
// stores on the file system. Browsers get `browser.ts`. Crypto lives at `keyroom/crypto`, the
// devserver at `keyroom/devserver`.
export * from "./browser.ts";
export { FileClientStore, SqliteClientStore } from "./client/client-store/node.ts";
