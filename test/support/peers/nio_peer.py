"""A matrix-nio (libolm) client driven over stdin/stdout, one JSON object per line.

Request:  {"id": 1, "method": "login", "params": {...}}
Response: {"id": 1, "ok": true, "result": {...}}
      or  {"id": 1, "ok": false, "error": {"code": "REQUEST_FAILED", "message": "..."}}

Requests run one at a time, in order. EOF on stdin (the test process went away) closes the client.
Usage: /usr/bin/python3 nio_peer.py <homeserver base URL> <store directory>

`sync` does what nio's `sync_forever` does around each sync and a bare `AsyncClient.sync()` does
not: send queued to-device messages, upload / query / claim keys when nio says so. It also retries
decrypting Megolm events whose room key arrived after them, which nio leaves to the application.
Nothing secret (tokens, keys, plaintext of other rooms) is logged; stdout carries only responses.
"""

import asyncio
import json
import os
import re
import sys
import tempfile

from nio import (
    AsyncClient,
    AsyncClientConfig,
    DummyEvent,
    JoinResponse,
    KeyVerificationCancel,
    KeysClaimResponse,
    KeysQueryResponse,
    KeysUploadResponse,
    LoginResponse,
    LogoutResponse,
    MegolmEvent,
    RegisterResponse,
    RoomCreateResponse,
    RoomInviteResponse,
    RoomLeaveResponse,
    RoomSendResponse,
    SyncResponse,
)

PROTOCOL_OUT = sys.stdout
# Anything nio or Python prints goes to stderr, so stdout stays one JSON response per line.
sys.stdout = sys.stderr

# A request line longer than this is refused (key files are the biggest thing we receive).
MAX_LINE_BYTES = 64 * 1024 * 1024


# nio sends the access token in the query string; an exception about a URL would carry it.
TOKEN_PATTERN = re.compile(r"(access_token=|Bearer\s+)[^&\s'\"]+")


def scrub(text):
    """The text with any access token replaced, for error messages and logs."""
    return TOKEN_PATTERN.sub(r"\1<redacted>", text)


class RequestFailed(Exception):
    """An operation the server or nio refused; the message never includes tokens or keys."""

    def __init__(self, message, errcode=None, http_status=None):
        super().__init__(message)
        self.errcode = errcode
        self.http_status = http_status


def failed(what, resp):
    """Describes an nio error response by its Matrix errcode, message and HTTP status only."""
    errcode = getattr(resp, "status_code", None)  # nio keeps the Matrix errcode here
    transport = getattr(resp, "transport_response", None)
    http_status = getattr(transport, "status", None)
    message = getattr(resp, "message", None) or type(resp).__name__
    return RequestFailed(
        f"{what}: {errcode or ''} {message}".strip(),
        errcode if isinstance(errcode, str) else None,
        http_status if isinstance(http_status, int) else None,
    )


def message_record(room_id, event):
    """A timeline event as the TypeScript side's PeerMessage, or None if it is no message."""
    source = event.source if isinstance(event.source, dict) else {}
    etype = source.get("type")
    encrypted = isinstance(event, MegolmEvent) or bool(getattr(event, "decrypted", False))
    if isinstance(event, MegolmEvent):
        etype = "m.room.encrypted"
    if etype not in ("m.room.message", "m.room.encrypted"):
        return None
    content = source.get("content") if isinstance(source.get("content"), dict) else {}
    body = content.get("body") if not isinstance(event, MegolmEvent) else None
    return {
        "roomId": room_id,
        "eventId": event.event_id,
        "sender": event.sender,
        "type": etype,
        "body": body if isinstance(body, str) else None,
        "decrypted": bool(getattr(event, "decrypted", False)) and not isinstance(event, MegolmEvent),
        "encrypted": encrypted,
        "sessionId": getattr(event, "session_id", None) if encrypted else None,
    }


class NioPeer:
    def __init__(self, base_url, store_dir):
        config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
        self.client = AsyncClient(base_url, "", store_path=store_dir, config=config)
        # The m.dummy events nio decrypted: another device made a new Olm session to unwedge ours.
        self.dummies = []
        self.client.add_to_device_callback(self._on_dummy, DummyEvent)
        self.store_dir = store_dir
        # Megolm events not decrypted yet: (room_id, MegolmEvent), retried after every sync.
        self.undecrypted = []
        # Rooms we left: nio keeps them in `rooms` (it only drops a room when it is forgotten).
        self.left = set()
        # Every SAS nio held (it drops one from `key_verifications` when the other side cancels it).
        self.sas_seen = {}
        # The code of the m.key.verification.cancel received per transaction (nio keeps none).
        self.cancels_received = {}

    def credentials(self):
        return {"userId": self.client.user_id, "deviceId": self.client.device_id}

    async def register(self, username, password, device_name=None):
        resp = await self.client.register(username, password, device_name or f"{username} (nio)")
        if not isinstance(resp, RegisterResponse):
            raise failed("register", resp)
        return self.credentials()

    async def login(self, username, password, device_id=None, device_name=None):
        self.client.user = username
        if device_id:
            self.client.device_id = device_id
        resp = await self.client.login(password, device_name=device_name or f"{username} (nio)")
        if not isinstance(resp, LoginResponse):
            raise failed("login", resp)
        return self.credentials()

    async def sync(self, timeout_ms=0):
        self.sas_seen.update(self.client.key_verifications)
        resp = await self.client.sync(timeout=int(timeout_ms), full_state=False)
        if not isinstance(resp, SyncResponse):
            raise failed("sync", resp)
        for event in resp.to_device_events:
            if isinstance(event, KeyVerificationCancel):
                self.cancels_received.setdefault(event.transaction_id, event.code)
        self.sas_seen.update(self.client.key_verifications)
        self.left.update(resp.rooms.leave.keys())
        self.left.difference_update(resp.rooms.join.keys())
        messages = []
        for room_id, room in resp.rooms.join.items():
            for event in room.timeline.events:
                record = message_record(room_id, event)
                if record is None:
                    continue
                if isinstance(event, MegolmEvent):
                    self.undecrypted.append((room_id, event))
                messages.append(record)
        await self.maintain()
        messages.extend(self.retry_decryption())
        return {"messages": messages, "rooms": self.rooms(), "devices": self.devices()}

    async def maintain(self):
        """The key housekeeping sync_forever does after each sync."""
        c = self.client
        if c.outgoing_to_device_messages:
            await c.send_to_device_messages()
        if c.should_upload_keys:
            resp = await c.keys_upload()
            if not isinstance(resp, KeysUploadResponse):
                raise failed("keys/upload", resp)
        if c.should_query_keys:
            resp = await c.keys_query()
            if not isinstance(resp, KeysQueryResponse):
                raise failed("keys/query", resp)
        if c.should_claim_keys:
            resp = await c.keys_claim(c.get_users_for_key_claiming())
            if not isinstance(resp, KeysClaimResponse):
                raise failed("keys/claim", resp)
        if c.outgoing_to_device_messages:
            await c.send_to_device_messages()

    def retry_decryption(self):
        """Decrypts held-back Megolm events whose key has arrived since; returns their new records."""
        still, done = [], []
        for room_id, event in self.undecrypted:
            try:
                clear = self.client.decrypt_event(event)
            except Exception:  # nio raises EncryptionError (or olm errors) while the key is missing
                still.append((room_id, event))
                continue
            record = message_record(room_id, clear)
            if record is not None:
                done.append(record)
        self.undecrypted = still
        return done

    def devices(self):
        """The devices nio currently knows (not deleted), per user, as its key queries left them."""
        out = {}
        store = self.client.device_store if self.client.olm else None
        for user_id in list(store.users) if store else []:
            out[user_id] = [d.id for d in store.active_user_devices(user_id)]
        return out

    def rooms(self):
        """Membership as nio sees it: rooms we are in (with members) and rooms we are invited to."""
        out = []
        for room_id, room in self.client.rooms.items():
            members = {}
            for user_id in room.users:
                members[user_id] = "invite" if user_id in room.invited_users else "join"
            membership = "leave" if room_id in self.left else "join"
            out.append(
                {"roomId": room_id, "membership": membership, "encrypted": room.encrypted, "members": members}
            )
        for room_id in self.client.invited_rooms:
            out.append({"roomId": room_id, "membership": "invite", "encrypted": False, "members": {}})
        return out

    async def create_room(self, encrypted=False, invite=None, name=None):
        initial_state = []
        if encrypted:
            initial_state.append(
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
            )
        resp = await self.client.room_create(
            name=name, invite=list(invite or []), initial_state=initial_state
        )
        if not isinstance(resp, RoomCreateResponse):
            raise failed("createRoom", resp)
        return {"roomId": resp.room_id}

    async def join(self, room_id):
        resp = await self.client.join(room_id)
        if not isinstance(resp, JoinResponse):
            raise failed("join", resp)
        return {"roomId": resp.room_id}

    async def invite(self, room_id, user_id):
        resp = await self.client.room_invite(room_id, user_id)
        if not isinstance(resp, RoomInviteResponse):
            raise failed("invite", resp)
        return {}

    async def leave(self, room_id):
        resp = await self.client.room_leave(room_id)
        if not isinstance(resp, RoomLeaveResponse):
            raise failed("leave", resp)
        self.left.add(room_id)
        return {}

    async def send_text(self, room_id, body):
        if room_id not in self.client.rooms or room_id in self.left:
            raise RequestFailed(f"send: not joined to {room_id} (sync first)")
        resp = await self.client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": body},
            ignore_unverified_devices=True,
        )
        if not isinstance(resp, RoomSendResponse):
            raise failed("send", resp)
        if self.client.outgoing_to_device_messages:
            await self.client.send_to_device_messages()
        return {"eventId": resp.event_id}

    async def logout(self):
        resp = await self.client.logout()
        if not isinstance(resp, LogoutResponse):
            raise failed("logout", resp)
        return {}

    async def identity_keys(self):
        keys = self.client.olm.account.identity_keys
        return {"curve25519": keys["curve25519"], "ed25519": keys["ed25519"]}

    async def export_keys(self, passphrase):
        # nio writes atomically and refuses an existing target: give it a fresh name in a fresh dir.
        with tempfile.TemporaryDirectory(prefix="export-", dir=self.store_dir) as tmp:
            path = os.path.join(tmp, "keys.txt")
            await self.client.export_keys(path, passphrase)
            with open(path, encoding="ascii") as f:
                return {"data": f.read()}

    async def import_keys(self, data, passphrase):
        fd, path = tempfile.mkstemp(prefix="import-", suffix=".txt", dir=self.store_dir)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(data)
            await self.client.import_keys(path, passphrase)
        finally:
            os.unlink(path)
        return {"retried": self.retry_decryption()}

    # ---- SAS verification (nio's to-device flow: a start without a request) ----

    def _sas(self, transaction_id):
        sas = self.client.key_verifications.get(transaction_id)
        if sas is None:
            raise RequestFailed(f"no verification {transaction_id}")
        return sas

    async def sas_start(self, user_id, device_id):
        device = self.client.device_store[user_id][device_id]
        before = set(self.client.key_verifications)
        resp = await self.client.start_key_verification(device)
        if type(resp).__name__ != "ToDeviceResponse":
            raise failed("start verification", resp)
        started = [t for t in self.client.key_verifications if t not in before]
        self.sas_seen.update(self.client.key_verifications)
        return {"transactionId": started[0]}

    async def sas_list(self):
        """Every verification nio holds or held: its state, and the SAS once the keys were exchanged.

        `cancelCode` is nio's own (what it sent when it cancelled; nio sets `m.user` when the other
        side cancelled), `receivedCancelCode` the code of the cancel the other side sent."""
        self.sas_seen.update(self.client.key_verifications)
        out = []
        for txn, sas in self.sas_seen.items():
            emoji, decimals = None, None
            try:
                emoji = [symbol for (symbol, _name) in sas.get_emoji()]
                decimals = list(sas.get_decimals())
            except Exception:  # nio raises while the other side's key is not there yet
                pass
            out.append(
                {
                    "transactionId": txn,
                    "userId": sas.other_olm_device.user_id,
                    "deviceId": sas.other_olm_device.id,
                    "weStarted": bool(sas.we_started_it),
                    "verified": bool(sas.verified),
                    "canceled": bool(sas.canceled),
                    "cancelCode": getattr(sas, "cancel_code", None) or None,
                    "receivedCancelCode": self.cancels_received.get(txn),
                    "emoji": emoji,
                    "decimals": decimals,
                }
            )
        return {"verifications": out}

    async def sas_accept(self, transaction_id):
        self._sas(transaction_id)
        resp = await self.client.accept_key_verification(transaction_id)
        if type(resp).__name__ != "ToDeviceResponse":
            raise failed("accept verification", resp)
        return {}

    async def sas_confirm(self, transaction_id):
        self._sas(transaction_id)
        resp = await self.client.confirm_short_auth_string(transaction_id)
        if type(resp).__name__ != "ToDeviceResponse":
            raise failed("confirm verification", resp)
        return {}

    async def sas_reject(self, transaction_id):
        """The user says the SAS differs: nio cancels with m.mismatched_sas (only once keys were exchanged)."""
        return await self._sas_cancel(transaction_id, True)

    async def sas_cancel(self, transaction_id):
        """The user cancels: nio cancels with m.user."""
        return await self._sas_cancel(transaction_id, False)

    async def _sas_cancel(self, transaction_id, reject):
        self._sas(transaction_id)
        resp = await self.client.cancel_key_verification(transaction_id, reject=reject)
        if type(resp).__name__ != "ToDeviceResponse":
            raise failed("cancel verification", resp)
        return {}

    async def device_verified(self, user_id, device_id):
        device = self.client.device_store[user_id][device_id]
        return {"verified": bool(device.verified)}

    async def close(self):
        await self.client.close()
        return {}

    def _on_dummy(self, event):
        self.dummies.append({"sender": event.sender, "senderKey": event.sender_key})

    async def dummies_received(self):
        """The m.dummy events nio decrypted so far: sender and the sending device's Curve25519 key."""
        return {"dummies": list(self.dummies)}

    async def discard_group_session(self, room_id):
        """Drops the room's outbound Megolm session: the next send shares a new room key."""
        self.client.invalidate_outbound_session(room_id)
        return {}


METHODS = {
    "register": NioPeer.register,
    "login": NioPeer.login,
    "sync": NioPeer.sync,
    "create_room": NioPeer.create_room,
    "join": NioPeer.join,
    "invite": NioPeer.invite,
    "leave": NioPeer.leave,
    "send_text": NioPeer.send_text,
    "identity_keys": NioPeer.identity_keys,
    "logout": NioPeer.logout,
    "export_keys": NioPeer.export_keys,
    "import_keys": NioPeer.import_keys,
    "close": NioPeer.close,
    "sas_start": NioPeer.sas_start,
    "sas_list": NioPeer.sas_list,
    "sas_accept": NioPeer.sas_accept,
    "sas_confirm": NioPeer.sas_confirm,
    "sas_reject": NioPeer.sas_reject,
    "sas_cancel": NioPeer.sas_cancel,
    "device_verified": NioPeer.device_verified,
    "dummies_received": NioPeer.dummies_received,
    "discard_group_session": NioPeer.discard_group_session,
}


def respond(payload):
    PROTOCOL_OUT.write(json.dumps(payload) + "\n")
    PROTOCOL_OUT.flush()


async def handle(peer, line):
    try:
        request = json.loads(line)
    except ValueError:
        respond({"id": None, "ok": False, "error": {"code": "PROTOCOL", "message": "request is not JSON"}})
        return True
    rid = request.get("id") if isinstance(request, dict) else None
    method = METHODS.get(request.get("method")) if isinstance(request, dict) else None
    params = request.get("params", {}) if isinstance(request, dict) else None
    if method is None or not isinstance(params, dict):
        respond({"id": rid, "ok": False, "error": {"code": "PROTOCOL", "message": "unknown method or bad params"}})
        return True
    try:
        result = await method(peer, **params)
        respond({"id": rid, "ok": True, "result": result})
    except TypeError as e:  # wrong parameter names
        respond({"id": rid, "ok": False, "error": {"code": "PROTOCOL", "message": scrub(str(e))}})
    except RequestFailed as e:
        error = {"code": "REQUEST_FAILED", "message": scrub(str(e))}
        if e.errcode:
            error["errcode"] = e.errcode
        if e.http_status:
            error["httpStatus"] = e.http_status
        respond({"id": rid, "ok": False, "error": error})
    except Exception as e:  # an nio bug or a server answer nio choked on: report its type, not its data
        respond(
            {"id": rid, "ok": False, "error": {"code": "REQUEST_FAILED", "message": scrub(f"{type(e).__name__}: {e}")}}
        )
    return request.get("method") != "close"


async def main(base_url, store_dir):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    peer = NioPeer(base_url, store_dir)
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            if not await handle(peer, line):
                break
    finally:
        await peer.client.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: nio_peer.py <base_url> <store_dir>", file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
