"""The Redis access layer on a 3-master cluster: scripts reach every master, a master that
lost its script cache is reloaded, nothing is sent twice after a timeout, and the test
clean-up reaches every master."""

from __future__ import annotations

import os
import signal
import time
import uuid

import msgspec
import pytest
from redis.asyncio.cluster import ClusterNode
from redis.exceptions import TimeoutError

from service.auth import CartRef
from service.redis.client import ClusterClient, create_redis
from tests.cluster.conftest import event_on, slot_of
from tests.conftest import TEST_KEY_PREFIX, delete_keys
from tests.orders.conftest import make_tier

pytestmark = pytest.mark.usefixtures("clean_state")


async def test_every_script_is_loaded_on_every_master(services, masters):
    assert isinstance(services.redis, ClusterClient)
    shas = list(services.scripts._sha.values())
    assert len(shas) == len(services.scripts.names)
    for port, master in masters.items():
        assert all(await master.script_exists(*shas)), f"master {port} lacks a script"


async def test_masters_that_lost_their_scripts_are_reloaded_and_every_call_repeated(services, redis_cluster, masters):
    """SCRIPT FLUSH on every master stands for a failover to a replica, or a restart: the
    single calls, the reserve pipeline, the multi-event view and the checkout's batch all
    reload the scripts and repeat what did not run."""
    tiers = [
        await make_tier(services, total=10, event_id=event_on(redis_cluster, port)) for port in redis_cluster.ports
    ]
    cart = CartRef(cart_id=str(uuid.uuid4()))

    for tier_id, _ in tiers:
        for master in masters.values():
            await master.script_flush()
        await services.carts.change(cart, tier_id, 2, "add", uuid.uuid4().hex)  # reserve pipeline

    for master in masters.values():
        await master.script_flush()
    view = await services.carts.view(cart)  # views: one EVALSHA per event, on three masters
    assert view.item_count == 6

    for master in masters.values():
        await master.script_flush()
    begun = await services.scripts.checkout_begin(  # _eval_each: three masters, one batch
        cart_id=cart.cart_id,
        event_ids=[event for _, event in tiers],
        order_id=str(uuid.uuid4()),
        replace="",
        now_ms=int(time.time() * 1000),
        deadline_ms=int(time.time() * 1000) + 60_000,
    )
    assert {reply.result for reply in begun.values()} == {"ok"}

    for master in masters.values():
        await master.script_flush()
    tier_id, event_id = tiers[0]
    counters = await services.scripts.inventory(event_id=event_id, tier_ids=[tier_id])  # a single EVALSHA
    assert counters.tiers[tier_id].held == 2
    for port, master in masters.items():
        assert all(await master.script_exists(*services.scripts._sha.values())), port


async def test_a_timeout_is_not_sent_again(settings, redis_cluster, masters, monkeypatch):
    """redis-py's cluster client resends a command up to three times after a timeout; ours
    never does: the client tries the paused master once, and the caller learns of it once."""
    port = redis_cluster.ports[2]  # not the master REDIS_URL names: the client finds the others
    key = f"{TEST_KEY_PREFIX}{{{uuid.uuid4().hex}}}:count"
    while redis_cluster.port_of_slot(slot_of(key)) != port:
        key = f"{TEST_KEY_PREFIX}{{{uuid.uuid4().hex}}}:count"
    tries: list[int] = []  # the node of each try of a command on the key, sent or not
    node_execute = ClusterNode.execute_command

    async def counted(node, *args, **kwargs):
        if key in args[1:2]:
            tries.append(node.port)
        return await node_execute(node, *args, **kwargs)

    monkeypatch.setattr(ClusterNode, "execute_command", counted)
    client = create_redis(msgspec.structs.replace(settings, redis_timeout_seconds=0.3))
    pid = redis_cluster.pids[2]
    try:
        assert await client.incr(key) == 1  # a connection to that master is open: a paused
        os.kill(pid, signal.SIGSTOP)  # one would hold a new one at its handshake
        try:
            with pytest.raises(TimeoutError):
                await client.incr(key)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert tries == [port, port], "the command was retried"
        # A new connection: the master reads it after what it had received while paused.
        assert await masters[port].get(key) == b"2"
    finally:
        await masters[port].delete(key)
        await client.aclose()


async def test_the_test_clean_up_finds_keys_on_every_master(redis, redis_cluster):
    keys = [f"{TEST_KEY_PREFIX}{{e:{event_on(redis_cluster, port)}}}:inv" for port in redis_cluster.ports]
    for key in keys:
        await redis.set(key, "1")
    assert await delete_keys(redis, TEST_KEY_PREFIX) >= len(keys)
    assert sum([await redis.exists(key) for key in keys]) == 0


async def test_the_readiness_ping_asks_the_masters_only(services, monkeypatch):
    sent: list[tuple] = []
    real = services.redis.execute_command

    async def execute_command(*args, **kwargs):
        sent.append((args, kwargs.get("target_nodes")))
        return await real(*args, **kwargs)

    monkeypatch.setattr(services.redis, "execute_command", execute_command)
    assert await services.redis.ping() is True
    assert sent == [(("PING",), "primaries")]
