"""Every script's keys share one hash slot, so each runs unchanged on Redis Cluster."""

from __future__ import annotations

import re
import uuid
from typing import get_args, get_type_hints

from redis.crc import key_slot

from service.keys import Keys
from service.redis.gateway import LUA_DIR, read_script
from service.redis.replies import REPLIES

keys = Keys("tc:")


def test_an_events_keys_share_one_slot():
    ev = keys.event(str(uuid.uuid4()))
    slots = {key_slot(k.encode()) for k in (ev.inventory, ev.carts, ev.expiries, ev.checkouts)}
    assert len(slots) == 1


def test_two_events_usually_land_in_different_slots():
    slots = {key_slot(keys.event(str(uuid.uuid4())).inventory.encode()) for _ in range(50)}
    assert len(slots) > 40


def test_an_events_key_names_are_built_once_and_the_memo_stays_bounded(monkeypatch):
    import service.keys

    fresh = Keys("tc:")
    event = str(uuid.uuid4())
    names = fresh.event(event)
    assert fresh.event(event) is names  # remembered
    assert names.inventory == f"tc:{{e:{event}}}:inv" and names.checkouts == f"tc:{{e:{event}}}:co"
    monkeypatch.setattr(service.keys, "EVENT_KEYS_KEPT", 3)
    for _ in range(10):
        fresh.event(str(uuid.uuid4()))
    assert len(fresh._events) <= 3
    assert fresh.event(event) == names  # built again, the same names


def test_a_carts_own_keys_share_one_slot():
    cart = str(uuid.uuid4())
    assert key_slot(keys.cart_meta(cart).encode()) == key_slot(keys.cart_checkout_lock(cart).encode())


def test_every_script_documents_keys_argv_and_reply_and_declares_its_keys():
    for path in sorted(LUA_DIR.glob("*.lua")):
        source = read_script(path.stem)
        header = source.split("]]", 1)[0]
        assert header.splitlines()[1].startswith(path.stem), f"{path.name}: header must open with its name"
        assert "Reply" in header, f"{path.name}: header must document the reply"
        body = source.split("]]", 1)[1]
        for n in {int(m) for m in re.findall(r"KEYS\[(\d+)\]", body)}:
            assert f"KEYS[{n}]" in header, f"{path.name}: KEYS[{n}] used but not documented"


def header_result_codes(name: str) -> set[str]:
    """The result codes a script's header lists in its Reply section (`r = "code"`, or
    `r = "a" | "b"`)."""
    header = read_script(name).split("]]", 1)[0]
    reply = header[header.index("Reply") :]
    codes: set[str] = set()
    for alternatives in re.findall(r'\br = ("[a-z-]+"(?:\s*\|\s*"[a-z-]+")*)', reply):
        codes |= set(re.findall(r'"([a-z-]+)"', alternatives))
    return codes


def test_each_replys_result_codes_are_exactly_those_its_script_documents():
    scripts = {path.stem for path in LUA_DIR.glob("*.lua")}
    assert set(REPLIES) == scripts - {"cart_touch"}  # cart_touch answers HGETALL's array
    for name, reply in REPLIES.items():
        declared = set(get_args(get_type_hints(reply)["result"]))
        assert declared == header_result_codes(name), name
