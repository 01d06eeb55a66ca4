// Letting the event loop run between the steps of a long computation (the passphrase key
// derivation of secret storage), so that a page's UI or a progress bar stays live. Portable: Node
// has `setImmediate`; browsers, workers and service workers do not, and there `setTimeout(0)` is
// clamped to 4 ms once nested, so a message to ourselves through a `MessageChannel` is the
// prompt way; `setTimeout(0)` is the last resort. Chosen by feature detection rather than by the
// `#client-platform` condition, because the `default` condition also serves runtimes that are
// neither Node nor a browser.

/** What the yield needs from the global scope (`globalThis`; a test passes a narrower one). */
export interface YieldGlobals {
  readonly setImmediate?: ((callback: () => void) => unknown) | undefined;
  readonly MessageChannel?: (new () => MessageChannel) | undefined;
  readonly setTimeout: (callback: () => void, ms: number) => unknown;
}

/** How `yieldFor(globals)` lets the event loop run: the first of these the runtime has. */
export type YieldMethod = "setImmediate" | "MessageChannel" | "setTimeout";

export function yieldMethod(globals: YieldGlobals): YieldMethod {
  if (typeof globals.setImmediate === "function") return "setImmediate";
  if (typeof globals.MessageChannel === "function") return "MessageChannel";
  return "setTimeout";
}

/** A function that resolves once the event loop has had a turn (tasks, rendering, I/O). */
export function yieldFor(globals: YieldGlobals): () => Promise<void> {
  const { setImmediate, MessageChannel: Channel, setTimeout } = globals;
  switch (yieldMethod(globals)) {
    case "setImmediate":
      return () => new Promise((resolve) => void setImmediate?.(resolve));
    case "MessageChannel":
      return () =>
        new Promise((resolve) => {
          // A channel per yield: closed once its one message arrives, so nothing keeps a Node
          // process alive and no handler is shared between concurrent derivations.
          const { port1, port2 } = new (Channel as new () => MessageChannel)();
          port1.onmessage = () => {
            port1.close();
            resolve();
          };
          port2.postMessage(undefined);
        });
    case "setTimeout":
      return () => new Promise((resolve) => void setTimeout(resolve, 0));
  }
}

/** Lets the event loop run once, by the quickest portable means this runtime has. */
export const yieldToEventLoop: () => Promise<void> = yieldFor(globalThis as unknown as YieldGlobals);
