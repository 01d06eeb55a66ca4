// The Keyroom web chat: log in or register, rooms, an encrypted timeline with a trust mark on every
// message, text and encrypted files, create and join rooms, and device verification with emoji.
// Everything Keyroom keeps lives in IndexedDB (the browser defaults): a reload or a browser restart
// resumes the session with the same device and keys.
import {
  ClientError,
  IndexedDbClientStore,
  type JsonObject,
  MatrixClient,
  MatrixError,
  type RoomEvent,
  type VerificationRequest,
} from "keyroom";
import { blobType } from "./media-types.ts";

/** Events kept per room in the page (older ones are dropped from view). */
const MAX_TIMELINE = 500;
const HISTORY_PAGE = 50;
/** localStorage key of the room shown last, opened again after a reload. */
const LAST_ROOM = "keyroom-web:last-room";

const el = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} is missing from index.html`);
  return found as T;
};

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<string, string>> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) if (v !== undefined) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function formData(form: HTMLFormElement, submitter?: HTMLElement | null): Record<string, string> {
  const data = new FormData(form, submitter ?? undefined);
  const out: Record<string, string> = {};
  for (const [k, v] of data) if (typeof v === "string") out[k] = v.trim();
  return out;
}

/** Deletes an IndexedDB database; other tabs' Keyroom stores close theirs when asked to. */
function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = () => resolve();
    request.onerror = () => resolve();
  });
}

function describeError(e: unknown): string {
  if (e instanceof MatrixError) return `${e.errcode}: ${e.message}`;
  if (e instanceof ClientError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

// ---- state ----

let client: MatrixClient | undefined;
let currentRoom: string | undefined;
const timelines = new Map<string, Map<string, RoomEvent>>();
const historyLoaded = new Set<string>();

function remember(event: RoomEvent): void {
  const t = timelines.get(event.roomId) ?? new Map<string, RoomEvent>();
  timelines.set(event.roomId, t);
  t.set(event.eventId, event);
  if (t.size > MAX_TIMELINE) {
    const oldest = t.keys().next().value;
    if (oldest !== undefined) t.delete(oldest);
  }
}

// ---- start-up and login ----

async function main(): Promise<void> {
  // Shows push notifications decrypted (sw.ts); a secure context is needed (https or localhost).
  await navigator.serviceWorker?.register("sw.js", { type: "module" }).catch(() => undefined);
  const config = (await (await fetch("config.json")).json()) as { homeserverUrl?: string };
  const store = new IndexedDbClientStore();
  if ((await store.loadSession()) !== undefined) {
    await start(await MatrixClient.fromStore(store, { encryption: true }));
    return;
  }
  await store.close();
  showLogin(config.homeserverUrl ?? "");
}

function showLogin(homeserverUrl: string): void {
  el("chat").hidden = true;
  el("login").hidden = false;
  const form = el<HTMLFormElement>("login-form");
  const hs = form.elements.namedItem("homeserver") as HTMLInputElement;
  if (hs.value === "") hs.value = homeserverUrl;
  form.onsubmit = async (e) => {
    e.preventDefault();
    const f = formData(form, e.submitter);
    el("login-error").textContent = "";
    const c = new MatrixClient({ homeserverUrl: f.homeserver ?? "", encryption: true });
    try {
      if (f.action === "register") {
        await c.register({ username: f.username ?? "", password: f.password ?? "" });
      } else {
        await c.login({ user: f.username ?? "", password: f.password ?? "" });
      }
      await start(c);
    } catch (err) {
      el("login-error").textContent = describeError(err);
      await c.close().catch(() => undefined);
    }
  };
}

async function start(c: MatrixClient): Promise<void> {
  client = c;
  el("login").hidden = true;
  el("chat").hidden = false;
  el("whoami").textContent = `${c.userId} · ${c.deviceId}`;
  el("whoami").title = `Device fingerprint: ${c.getFingerprint()}`;
  c.on("room.event", (_room, event) => {
    remember(event);
    if (event.roomId === currentRoom) renderTimeline();
  });
  c.on("room.decrypted", (_room, event) => {
    remember(event);
    if (event.roomId === currentRoom) renderTimeline();
  });
  c.on("room.myMembership", () => renderRooms());
  c.on("room.invite", () => renderRooms());
  c.on("room.state", (room) => {
    renderRooms();
    if (room.roomId === currentRoom) renderRoomHeader();
  });
  c.on("verification.request", (request) => showVerification(request));
  // Read now: once the server ends the session (revoked elsewhere), the client has no user.
  const { userId, deviceId } = c;
  el("logout").onclick = async () => {
    try {
      await c.logout();
    } catch (e) {
      // Not reached (the network): the session stays, and resumes after the reload.
      if (!(e instanceof ClientError && e.code === "NOT_LOGGED_IN")) return location.reload();
      // The server ended the session (this device logged out elsewhere): forgotten here too.
      const stored = await c.store.loadSession();
      if (stored?.userId === userId && stored.deviceId === deviceId) await c.store.clear();
      await c.close().catch(() => undefined);
    }
    // The device is gone: its keys must not stay in this browser (the store opens with the Web
    // Crypto key kept beside it), and a later login is a new device that needs a new store.
    await deleteDatabase(`keyroom-crypto:${userId}`);
    localStorage.removeItem(LAST_ROOM);
    location.reload();
  };
  wireForms(c);
  await c.startSync();
  renderRooms();
  const last = localStorage.getItem(LAST_ROOM);
  const first = c.getRooms("join").find((r) => r.roomId === last) ?? c.getRooms("join")[0];
  if (first !== undefined) await openRoom(first.roomId);
  document.body.dataset.ready = "true";
}

// ---- rooms ----

function renderRooms(): void {
  const c = client;
  if (c === undefined) return;
  const list = el("rooms");
  list.replaceChildren();
  for (const room of c.getRooms()) {
    if (room.membership !== "join" && room.membership !== "invite") continue;
    // displayName, not name: the name as the room's state holds it may carry bidirectional overrides.
    const item = h(
      "li",
      { "data-room-id": room.roomId },
      `${room.encrypted ? "🔒 " : ""}${room.displayName}`,
    );
    if (room.roomId === currentRoom) item.classList.add("selected");
    if (room.membership === "invite") {
      item.classList.add("invite");
      const join = h("button", { class: "secondary" }, "Join");
      join.onclick = async (e) => {
        e.stopPropagation();
        await c.joinRoom(room.roomId);
        await openRoom(room.roomId);
      };
      item.append(join);
    } else {
      item.onclick = () => void openRoom(room.roomId);
    }
    list.append(item);
  }
}

async function openRoom(roomId: string): Promise<void> {
  const c = client;
  if (c === undefined) return;
  currentRoom = roomId;
  localStorage.setItem(LAST_ROOM, roomId);
  el("composer").hidden = false;
  renderRooms();
  renderRoomHeader();
  renderTimeline();
  if (!historyLoaded.has(roomId)) {
    historyLoaded.add(roomId);
    // After a reload the page has no timeline: the last page of history, decrypted from the store.
    const page = await c.messages(roomId, { dir: "b", limit: HISTORY_PAGE });
    const live = timelines.get(roomId) ?? new Map<string, RoomEvent>();
    const merged = new Map<string, RoomEvent>();
    for (const event of [...page.events].reverse()) merged.set(event.eventId, event);
    for (const [id, event] of live) merged.set(id, event);
    timelines.set(roomId, merged);
    if (currentRoom === roomId) renderTimeline();
  }
}

function renderRoomHeader(): void {
  const room = currentRoom === undefined ? undefined : client?.getRoom(currentRoom);
  el("room-name").textContent = room?.displayName ?? "No room selected";
  el("room-badge").textContent = room?.encrypted ? "🔒 end-to-end encrypted" : "";
}

// ---- timeline ----

/** The mark shown beside a message, and the trust word the page (and the tests) read. */
function trustOf(event: RoomEvent): { mark: string; trust: string; title: string } {
  const enc = event.encryption;
  if (enc === undefined) return { mark: "○", trust: "plaintext", title: "Not encrypted" };
  if (!enc.decrypted) return { mark: "✖", trust: "undecryptable", title: `Unable to decrypt: ${enc.code}` };
  switch (enc.trust) {
    case "verified":
      return { mark: "🔒", trust: "verified", title: "Encrypted by a verified device" };
    case "unverified":
      return { mark: "🔓", trust: "unverified", title: "Encrypted by a device you have not verified" };
    case "mismatched_sender_key":
      return { mark: "⚠", trust: "mismatched_sender_key", title: "The sending device's keys do not match" };
    default:
      return { mark: "⚠", trust: "unknown_device", title: "Encrypted by a device Keyroom does not know" };
  }
}

function renderTimeline(): void {
  const list = el("timeline");
  list.replaceChildren();
  const events = currentRoom === undefined ? [] : [...(timelines.get(currentRoom)?.values() ?? [])];
  for (const event of events) {
    const shown = event.encryption?.decrypted === false || event.type === "m.room.message";
    if (!shown) continue;
    const { mark, trust, title } = trustOf(event);
    list.append(
      h(
        "li",
        { class: "msg", "data-event-id": event.eventId, "data-trust": trust },
        h("span", { class: "mark", title }, mark),
        h("div", {}, h("div", { class: "sender" }, event.sender), bodyOf(event)),
      ),
    );
  }
  list.scrollTop = list.scrollHeight;
}

function bodyOf(event: RoomEvent): HTMLElement {
  if (event.encryption?.decrypted === false) {
    return h("div", { class: "body" }, `Unable to decrypt (${event.encryption.code})`);
  }
  const content = event.content;
  const body = typeof content.body === "string" ? content.body : "";
  const msgtype = content.msgtype;
  if (msgtype === "m.key.verification.request") {
    return h("div", { class: "body notice" }, "asked to verify a device");
  }
  if (msgtype === "m.file" || msgtype === "m.image" || msgtype === "m.audio" || msgtype === "m.video") {
    return fileBody(content, body);
  }
  return h("div", { class: "body" }, body);
}

function fileBody(content: JsonObject, name: string): HTMLElement {
  const box = h("div", { class: "body file-body" });
  const open = h("button", { class: "link" }, `📄 ${name}`);
  open.onclick = async () => {
    const c = client;
    if (c === undefined) return;
    // Downloaded and decrypted in the page; the server only ever held ciphertext.
    const bytes = await c.downloadAttachment(content);
    const info = content.info as { mimetype?: unknown } | undefined;
    // Never a type that runs script: a blob: URL has this page's origin (see media-types.ts).
    const type = blobType(info?.mimetype);
    const url = URL.createObjectURL(new Blob([new Uint8Array(bytes)], { type }));
    const link = h("a", { href: url, download: name, class: "download", "data-size": String(bytes.length) });
    link.textContent = `Save ${name} (${bytes.length} bytes)`;
    box.replaceChildren(type.startsWith("image/") ? h("img", { src: url, alt: name, width: "240" }) : link);
    // Shown as text whatever the blob's type: textContent runs nothing.
    if (typeof info?.mimetype === "string" && info.mimetype.startsWith("text/"))
      box.append(h("pre", { class: "file-text" }, new TextDecoder().decode(bytes)));
  };
  box.append(open);
  return box;
}

// ---- forms: send, files, create, join, devices ----

function wireForms(c: MatrixClient): void {
  el<HTMLFormElement>("composer").onsubmit = async (e) => {
    e.preventDefault();
    const input = el<HTMLInputElement>("message");
    const text = input.value.trim();
    if (text === "" || currentRoom === undefined) return;
    input.value = "";
    await c.sendText(currentRoom, text);
  };
  el<HTMLInputElement>("file").onchange = async (e) => {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    if (file === undefined || currentRoom === undefined) return;
    input.value = "";
    await c.sendFile(currentRoom, new Uint8Array(await file.arrayBuffer()), {
      filename: file.name,
      contentType: file.type || "application/octet-stream",
    });
  };
  el<HTMLFormElement>("create-room").onsubmit = async (e) => {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const f = formData(form);
    const roomId = await c.createRoom({
      name: f.name ?? "",
      encrypted: true,
      ...(f.invite ? { invite: [f.invite] } : {}),
    });
    form.reset();
    await openRoom(roomId);
  };
  el<HTMLFormElement>("join-room").onsubmit = async (e) => {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const roomId = await c.joinRoom(formData(form).room ?? "");
    form.reset();
    await openRoom(roomId);
  };
  el<HTMLFormElement>("verify-user").onsubmit = async (e) => {
    e.preventDefault();
    await showDevices(c, formData(e.target as HTMLFormElement).user ?? "");
  };
}

async function showDevices(c: MatrixClient, userId: string): Promise<void> {
  const list = el("devices");
  list.replaceChildren();
  for (const device of await c.getUserDevices(userId)) {
    if (userId === c.userId && device.deviceId === c.deviceId) continue;
    const item = h(
      "li",
      { "data-device-id": device.deviceId, "data-trust": device.trust },
      h("span", {}, `${device.displayName ?? device.deviceId} (${device.trust})`),
    );
    if (device.trust !== "verified") {
      const verify = h("button", { class: "secondary" }, "Verify");
      verify.onclick = async () => {
        const request = await c.requestVerification(userId, device.deviceId);
        showVerification(request);
        await request.waitFor((s) => s.phase === "ready" || s.phase === "cancelled");
        if (request.phase === "ready") await request.startSas();
      };
      item.append(verify);
    }
    list.append(item);
  }
}

// ---- verification dialog ----

function showVerification(request: VerificationRequest): void {
  const dialog = el<HTMLDialogElement>("verification");
  const text = el("verification-text");
  const emoji = el("emoji");
  const actions = el("verification-actions");
  const button = (label: string, action: () => Promise<void>, secondary = false) => {
    const b = h("button", secondary ? { class: "secondary" } : {}, label);
    b.onclick = () => void action();
    return b;
  };
  const close = button("Close", async () => dialog.close(), true);
  const who = `${request.otherUserId}${request.otherDeviceId ? ` (${request.otherDeviceId})` : ""}`;
  emoji.replaceChildren();
  if (request.incoming) {
    text.textContent = `${who} wants to verify this device.`;
    actions.replaceChildren(
      button("Accept", () => request.accept()),
      button("Decline", () => request.cancel(), true),
    );
  } else {
    text.textContent = `Waiting for ${who} to accept…`;
    actions.replaceChildren(button("Cancel", () => request.cancel(), true));
  }
  request.on("sas", ({ emoji: symbols, decimals }) => {
    text.textContent = "Do these emoji appear on the other device, in the same order?";
    emoji.replaceChildren(...(symbols ?? []).map((s) => h("li", {}, h("span", {}, s.emoji), s.description)));
    if (symbols === undefined) emoji.append(h("li", {}, decimals.join(" ")));
    actions.replaceChildren(
      button("They match", () => request.confirm()),
      button("They don't match", () => request.mismatch(), true),
    );
  });
  request.on("done", () => {
    text.textContent = `Verified ${who}.`;
    dialog.dataset.result = "verified";
    actions.replaceChildren(close);
  });
  request.on("cancelled", ({ reason }) => {
    text.textContent = `Verification cancelled: ${reason}`;
    dialog.dataset.result = "cancelled";
    actions.replaceChildren(close);
  });
  delete dialog.dataset.result;
  if (!dialog.open) dialog.showModal();
}

main().catch((e: unknown) => {
  document.body.prepend(h("p", { class: "error" }, `Keyroom web chat failed to start: ${describeError(e)}`));
});
