"""Two matrix-nio clients (libolm) register on a devserver, share an encrypted room and exchange
Megolm messages. Prints one JSON object on stdout; exit code 0 only if both decrypted each other.

Usage: /usr/bin/python3 megolm_chat.py <base_url> [--pause]

With --pause, after the first message is decrypted the script prints PAUSE and waits for a line on
stdin (the test restarts the server meanwhile), then carries on with the same clients.
"""

import asyncio
import json
import os
import sys
import tempfile
import time

from nio import (
    AsyncClient,
    AsyncClientConfig,
    LoginResponse,
    MegolmEvent,
    RegisterResponse,
    RoomCreateResponse,
    RoomMessageText,
    RoomSendResponse,
)

DEADLINE_S = 30


async def register_and_login(base, store, name):
    plain = AsyncClient(base, name)
    reg = await plain.register(name, "pw-" + name)
    await plain.close()
    if not isinstance(reg, RegisterResponse):
        raise RuntimeError(f"register {name}: {reg}")
    os.makedirs(store, exist_ok=True)
    cfg = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
    client = AsyncClient(base, name, store_path=store, config=cfg)
    login = await client.login("pw-" + name, device_name=name + "-nio")
    if not isinstance(login, LoginResponse):
        raise RuntimeError(f"login {name}: {login}")
    return client


async def step(client, timeout_ms=0):
    """One sync plus the key maintenance sync_forever would do."""
    resp = await client.sync(timeout=timeout_ms, full_state=False)
    if client.should_upload_keys:
        await client.keys_upload()
    if client.should_query_keys:
        await client.keys_query()
    return resp


async def wait_for_text(client, room_id, body):
    """Syncs until `body` shows up decrypted in `room_id`; returns (found, undecryptable count)."""
    end = time.monotonic() + DEADLINE_S
    undecryptable = 0
    while time.monotonic() < end:
        resp = await step(client, 2000)
        room = getattr(resp, "rooms", None)
        if room is None:
            continue
        joined = resp.rooms.join.get(room_id)
        if joined is None:
            continue
        for ev in joined.timeline.events:
            if isinstance(ev, RoomMessageText) and ev.body == body and ev.decrypted:
                return True, undecryptable
            if isinstance(ev, MegolmEvent):
                undecryptable += 1
    return False, undecryptable


async def send(client, room_id, body):
    # Make sure every member's devices are known and sessions can be built before sharing.
    await step(client)
    resp = await client.room_send(
        room_id,
        "m.room.message",
        {"msgtype": "m.text", "body": body},
        ignore_unverified_devices=True,
    )
    if not isinstance(resp, RoomSendResponse):
        raise RuntimeError(f"send: {resp}")
    return resp.event_id


async def pause_for_restart():
    print("PAUSE", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def main(base, pause):
    tmp = tempfile.mkdtemp(prefix="keyroom-nio-")
    suffix = str(int(time.time() * 1000) % 100000)
    alice = await register_and_login(base, os.path.join(tmp, "a"), "nioalice" + suffix)
    bob = await register_and_login(base, os.path.join(tmp, "b"), "niobob" + suffix)
    result = {"ok": False}
    try:
        await step(alice)
        await step(bob)
        created = await alice.room_create(
            invite=[bob.user_id],
            initial_state=[
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ],
        )
        if not isinstance(created, RoomCreateResponse):
            raise RuntimeError(f"create: {created}")
        room_id = created.room_id
        await step(bob)
        joined = await bob.join(room_id)
        if getattr(joined, "room_id", None) != room_id:
            raise RuntimeError(f"join: {joined}")
        for _ in range(2):
            await step(alice)
            await step(bob)

        await send(alice, room_id, "hello from alice")
        bob_ok, bob_utd = await wait_for_text(bob, room_id, "hello from alice")
        if pause:
            await pause_for_restart()
        await send(bob, room_id, "hello from bob")
        alice_ok, alice_utd = await wait_for_text(alice, room_id, "hello from bob")
        # A second message on Alice's existing Megolm session.
        await send(alice, room_id, "second from alice")
        bob_ok2, bob_utd2 = await wait_for_text(bob, room_id, "second from alice")
        encrypted = alice.rooms[room_id].encrypted and bob.rooms[room_id].encrypted
        result = {
            "ok": bool(bob_ok and alice_ok and bob_ok2 and encrypted),
            "bob_decrypted": bob_ok and bob_ok2,
            "alice_decrypted": alice_ok,
            "room_encrypted": encrypted,
            "undecryptable": bob_utd + alice_utd + bob_utd2,
        }
    finally:
        await alice.close()
        await bob.close()
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], "--pause" in sys.argv[2:])))
