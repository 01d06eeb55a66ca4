// How the js-sdk driver runs matrix-js-sdk inside a test process: quiet (jssdk-quiet.ts), fast to
// back up, and without timers that keep the process alive after every client stopped. Imported for
// its effects (and `silentLogger`) by jssdk.ts.
import "./jssdk-quiet.ts";
import { RustBackupManager } from "matrix-js-sdk/lib/rust-crypto/backup.js";

export { silentLogger } from "./jssdk-quiet.ts";

// The backup loop waits up to 10 s before each upload so real clients don't stampede a server;
// the SDK documents this knob as the one tests lower.
Object.defineProperty(RustBackupManager, "maxBackupLoopStartDelayMillis", { value: 0 });

// The SDK arms a timer per HTTP request (its AbortSignal.timeout ponyfill, up to 110 s for a sync)
// and never clears it, so a test process would linger for minutes after every client stopped.
// Unref the SDK's long timers (they only abort requests); nobody else's timers are touched.
const LONG_TIMER_MS = 10_000;
const realSetTimeout = globalThis.setTimeout;
const unrefSdkTimers = ((...args: Parameters<typeof setTimeout>) => {
  const timer = realSetTimeout(...args);
  if ((args[1] ?? 0) >= LONG_TIMER_MS && new Error().stack?.includes("/matrix-js-sdk/")) timer.unref();
  return timer;
}) as typeof setTimeout;
globalThis.setTimeout = Object.assign(unrefSdkTimers, realSetTimeout);
