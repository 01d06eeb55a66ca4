// Shapes the devserver passes between its layers. JSON that reaches clients is built from these.

export type JsonObject = Record<string, unknown>;

/** A room event as stored (the client-server "ClientEvent" format without per-viewer `unsigned`). */
export interface RoomEvent {
  event_id: string;
  room_id: string;
  sender: string;
  type: string;
  state_key?: string;
  content: JsonObject;
  origin_server_ts: number;
  redacts?: string;
  unsigned?: JsonObject;
}

/** A stored event with its position in the server's stream. */
export interface StreamEvent {
  pos: number;
  event: RoomEvent;
  /** Device and transaction ID that sent it, so only that device sees `unsigned.transaction_id`. */
  txnDevice: string | null;
  txnId: string | null;
}

export type Membership = "join" | "invite" | "leave" | "ban" | "knock";

export interface Authed {
  userId: string;
  /** "" for an appservice request that names no device. */
  deviceId: string;
  token: string;
  /** Set when an appservice's `as_token` made the request (acting as `userId`). */
  appserviceId?: string;
}

/** `rec[key]`, created with `init()` when missing. */
export function slot<T>(rec: Record<string, T>, key: string, init: () => NoInfer<T>): T {
  let v = rec[key];
  if (v === undefined) {
    v = init();
    rec[key] = v;
  }
  return v;
}
