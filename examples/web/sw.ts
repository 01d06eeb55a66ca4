// The service worker of the web chat: shows a push notification's message decrypted, while the tab
// (or none) is open. It opens the same IndexedDB stores as the page (the session and the crypto
// store; tabs, workers and service workers share the crypto store through its lease), fetches the
// one event the push names and decrypts it, syncing once first if its key has not come in yet (no
// tab open). A push gateway's `event_id_only` payload carries `room_id` and `event_id`; the page
// can also ask by message (the tests do).
import { IndexedDbClientStore, MatrixClient } from "keyroom";

/** The little of the service worker scope this file uses (the DOM lib has no worker types). */
interface WaitUntilEvent {
  waitUntil(p: Promise<unknown>): void;
}
interface PushLikeEvent extends WaitUntilEvent {
  readonly data: { json(): unknown } | null;
}
interface MessageLikeEvent extends WaitUntilEvent {
  readonly data: unknown;
  readonly source: { postMessage(message: unknown): void } | null;
}
interface ServiceWorkerScope {
  addEventListener(type: "push", listener: (e: PushLikeEvent) => void): void;
  addEventListener(type: "message", listener: (e: MessageLikeEvent) => void): void;
  readonly registration: {
    showNotification(title: string, options: { body: string; tag: string }): Promise<void>;
  };
}
const sw = globalThis as unknown as ServiceWorkerScope;

export interface Notice {
  readonly sender: string;
  readonly body: string;
  readonly decrypted: boolean;
}

/** The `room_id` and `event_id` of a push payload or message, if it has them. */
function eventRef(data: unknown): { roomId: string; eventId: string } | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const { room_id: roomId, event_id: eventId } = data as { room_id?: unknown; event_id?: unknown };
  return typeof roomId === "string" && typeof eventId === "string" ? { roomId, eventId } : undefined;
}

async function notice(roomId: string, eventId: string): Promise<Notice> {
  const client = await MatrixClient.fromStore(new IndexedDbClientStore(), { encryption: true });
  try {
    let event = await client.fetchEvent(roomId, eventId);
    if (event.encryption?.decrypted === false) {
      // Its key may wait in a to-device message nobody synced yet (no tab open): one sync from the
      // shared position takes it in, as a tab's would, then the event is read again.
      await client.syncOnce({ timeoutMs: 0 });
      event = await client.fetchEvent(roomId, eventId);
    }
    if (event.encryption?.decrypted === false) {
      return { sender: event.sender, body: "Encrypted message", decrypted: false };
    }
    const body = typeof event.content.body === "string" ? event.content.body : "New message";
    return { sender: event.sender, body, decrypted: event.encryption !== undefined };
  } finally {
    await client.close();
  }
}

sw.addEventListener("push", (e) => {
  const ref = eventRef(e.data?.json());
  if (ref === undefined) return;
  e.waitUntil(
    notice(ref.roomId, ref.eventId).then((n) =>
      sw.registration.showNotification(n.sender, { body: n.body, tag: ref.eventId }),
    ),
  );
});

sw.addEventListener("message", (e) => {
  const ref = eventRef(e.data);
  if (ref === undefined) return;
  e.waitUntil(
    notice(ref.roomId, ref.eventId).then(
      (n) => e.source?.postMessage({ eventId: ref.eventId, ...n }),
      (err: unknown) => e.source?.postMessage({ eventId: ref.eventId, error: String(err) }),
    ),
  );
});
