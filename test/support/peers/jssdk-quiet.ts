// matrix-js-sdk in a Node process, quiet: the Promise polyfill it needs on Node 20 (first, before the
// SDK loads) and its logger silenced. jssdk-env.ts adds what only tests want; the sync benchmark
// (bench/sync) takes this alone, so no test-only hook is timed against the SDK.
import "./promise-polyfill.ts";
import { logger as sdkLogger } from "matrix-js-sdk/lib/logger.js";

type Logger = ReturnType<typeof sdkLogger.getChild>;

// The SDK logs every request at debug level through loglevel; keep output readable. Loggers
// created later copy the root's method factory, so silencing the root silences them too.
const silent = (): void => {};
// At run time the SDK's root logger is a loglevel logger; its typings hide that.
const loglevelRoot = sdkLogger as unknown as { methodFactory: () => typeof silent; rebuild(): void };
loglevelRoot.methodFactory = () => silent;
loglevelRoot.rebuild();
export const silentLogger: Logger = {
  trace: silent,
  debug: silent,
  info: silent,
  warn: silent,
  error: silent,
  getChild: () => silentLogger,
};
