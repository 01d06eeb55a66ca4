// sendToDevice: queue messages per target device until a later sync acknowledges them.
import * as z from "../../wire/zod.ts";
import { badJson, MatrixError } from "../errors.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody } from "../router.ts";

/** Most to-device messages one request may fan out to. */
export const MAX_TO_DEVICE_MESSAGES_PER_REQUEST = 10_000;
/**
 * Most to-device messages queued for one device (one that never syncs, or a made-up name's target).
 * Past it, new messages for that device are dropped; the sender still gets 200, as its other
 * targets got theirs.
 */
export const MAX_TO_DEVICE_QUEUE_PER_DEVICE = 100_000;
/**
 * Largest to-device message as queued (type, sender, content; 413 M_TOO_LARGE past it): room above
 * the 64 KiB ciphertexts clients accept.
 */
export const MAX_TO_DEVICE_MESSAGE_BYTES = 256 * 1024;

const schema = z.object({
  messages: z.record(z.string(), z.record(z.string(), z.record(z.string(), z.unknown()))),
});

export function registerToDeviceRoutes({ hs, router }: RouteContext): void {
  router.client("PUT", "/sendToDevice/:type/:txn", (req) => {
    const a = authed(req);
    const body = jsonBody(req, schema);
    const type = req.params.type!;
    const key = "to_device";
    if (hs.accounts.getTxn(a.userId, a.deviceId, key, req.params.txn!) !== undefined) return { json: {} };
    const targets: { user: string; device: string; content: Record<string, unknown> }[] = [];
    for (const [user, devices] of Object.entries(body.messages)) {
      // No federation: messages to users of other servers have nowhere to go.
      if (!hs.isLocalUser(user)) continue;
      for (const [device, content] of Object.entries(devices)) {
        const ids = device === "*" ? hs.accounts.listDevices(user).map((d) => d.device_id) : [device];
        for (const d of ids) targets.push({ user, device: d, content });
      }
    }
    if (targets.length > MAX_TO_DEVICE_MESSAGES_PER_REQUEST) throw badJson("Too many to-device messages");
    hs.tx(() => {
      const queued = new Map<string, number>();
      for (const t of targets) {
        if (!hs.accounts.getDevice(t.user, t.device)) continue;
        const target = JSON.stringify([t.user, t.device]);
        const n = queued.get(target) ?? hs.keys.queuedToDevice(t.user, t.device);
        if (n >= MAX_TO_DEVICE_QUEUE_PER_DEVICE) continue;
        queued.set(target, n + 1);
        const msg = JSON.stringify({ type, sender: a.userId, content: t.content });
        if (Buffer.byteLength(msg) > MAX_TO_DEVICE_MESSAGE_BYTES) {
          throw new MatrixError(
            413,
            "M_TOO_LARGE",
            `A to-device message is at most ${MAX_TO_DEVICE_MESSAGE_BYTES} bytes`,
          );
        }
        hs.keys.queueToDevice(hs.stream.next(), t.user, t.device, msg);
      }
      hs.accounts.putTxn(a.userId, a.deviceId, key, req.params.txn!, "{}");
    });
    hs.notifier.notify(new Set(targets.map((t) => t.user)));
    return { json: {} };
  });
}
