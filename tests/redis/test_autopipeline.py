"""Auto-pipelining on the real test Redis: one batch per tick, each call its own answer."""

from __future__ import annotations

import asyncio
import socket

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError, NoScriptError, ResponseError

from service.redis.autopipeline import AutoPipelined, _Link
from service.redis.client import create_redis
from tests.conftest import TEST_KEY_PREFIX

K = TEST_KEY_PREFIX + "ap:"
# A private server paused (SIGSTOP) for a timeout test is resumed by the test once the call
# failed; this bound only ends a test whose timer never fires (it then sees an answer).
STOPPED_AT_MOST = 60.0
pytestmark = pytest.mark.standalone_only(
    reason="auto-pipelining wraps a standalone connection; on a cluster the service sends through "
    "redis-py's cluster client (tests/cluster/test_scripts_on_cluster.py)"
)


async def test_calls_of_one_tick_leave_as_one_write(redis, monkeypatch):
    auto = AutoPipelined(redis)
    sent: list[int] = []
    real = _Link.send

    def counted(self, calls, commands):
        sent.append(len(calls))
        return real(self, calls, commands)

    monkeypatch.setattr(_Link, "send", counted)
    results = await asyncio.gather(*(auto.incr(K + "n") for _ in range(100)))
    assert sorted(results) == list(range(1, 101))
    assert sent == [100]
    await redis.delete(K + "n")
    await auto.aclose()


async def test_every_call_shares_one_connection_and_a_lost_one_is_replaced(redis):
    auto = AutoPipelined(redis)
    await asyncio.gather(*(auto.set(K + f"c{n}", n) for n in range(10)))
    link = auto._link
    assert link is not None and link.alive
    assert len({await auto.client_id() for _ in range(5)}) == 1
    await redis.client_kill_filter(_id=await auto.client_id())  # the server drops it
    for _ in range(100):
        if not link.alive:
            break
        await asyncio.sleep(0.01)
    assert not link.alive  # seen at once, not at the next call
    assert await auto.get(K + "c1") == b"1"  # on a new connection
    assert auto._link is not link and auto._link.alive
    await redis.delete(*(K + f"c{n}" for n in range(10)))
    await auto.aclose()


async def test_each_call_gets_its_own_reply_or_error(redis):
    auto = AutoPipelined(redis)
    await redis.set(K + "s", "text")
    ok, wrong_type, no_script = await asyncio.gather(
        auto.get(K + "s"), auto.hgetall(K + "s"), auto.evalsha("0" * 40, 0), return_exceptions=True
    )
    assert ok == b"text"
    assert isinstance(wrong_type, ResponseError)
    assert isinstance(no_script, NoScriptError)
    await redis.delete(K + "s")


async def test_a_callers_pipeline_stays_in_order_and_applies_reply_callbacks(redis):
    auto = AutoPipelined(redis)
    pipe = auto.pipeline()
    pipe.hset(K + "h", mapping={"a": "1"})
    pipe.hincrby(K + "h", "a", 2)
    pipe.hgetall(K + "h")
    other = asyncio.ensure_future(auto.hset(K + "h", "a", "100"))
    assert await pipe.execute() == [1, 3, {b"a": b"3"}]
    await other
    await redis.delete(K + "h")


async def test_a_dead_connection_fails_every_call_of_the_batch():
    auto = AutoPipelined(Redis(port=1, socket_connect_timeout=0.5))
    results = await asyncio.gather(auto.get("a"), auto.get("b"), return_exceptions=True)
    assert all(isinstance(r, (ConnectionError, OSError)) for r in results)


def test_transactions_are_refused(redis):
    with pytest.raises(ValueError):
        AutoPipelined(redis).pipeline(transaction=True)


async def test_a_batch_times_out_as_a_whole_and_leaves_no_stale_reply(private_redis):
    server = private_redis("autopipeline-timeout")
    auto = AutoPipelined(Redis.from_url(server.url, socket_timeout=0.3))
    assert auto.timeout == 0.3
    await auto.set("k", "before")
    server.pause(STOPPED_AT_MOST)  # until resume(): nothing but the batch's own timer can end it
    try:
        results = await asyncio.gather(auto.get("k"), auto.incr("n"), return_exceptions=True)
    finally:
        server.resume()  # the commands that were cut off may run now
    assert all(isinstance(r, TimeoutError) for r in results), results
    await auto.set("k", "after")
    assert await auto.get("k") == b"after"  # the reply of this call, not a stale one
    await auto.aclose()


async def test_a_pipeline_with_a_command_that_cannot_be_sent_sends_none_of_it(redis):
    auto = AutoPipelined(redis)
    pipe = auto.pipeline()
    pipe.set(K + "p", "1")
    pipe.execute_command("SET", K + "q", object())
    with pytest.raises(TypeError):
        await pipe.execute()
    assert await auto.get(K + "p") is None
    await auto.aclose()


async def test_a_slow_batch_behind_answered_ones_still_times_out(private_redis):
    server = private_redis("autopipeline-deadlines")
    auto = AutoPipelined(Redis.from_url(server.url, socket_timeout=0.3))
    for _ in range(3):  # answered batches, whose deadlines the timer must walk past
        await auto.set("k", "v")
    server.pause(STOPPED_AT_MOST)  # the server cannot answer: only the batch's timer ends the call
    try:
        with pytest.raises(TimeoutError):
            await auto.get("k")
    finally:
        server.resume()
    assert await auto.get("k") == b"v"
    await auto.aclose()


async def test_the_services_connection_sends_tcp_keepalive_probes(settings):
    auto = AutoPipelined(create_redis(settings))
    await auto.execute_command("PING")
    sock = auto._link.transport.get_extra_info("socket")
    if sock is None or sock.family == socket.AF_UNIX:
        pytest.skip("not a TCP connection")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 15
    await auto.aclose()
    await auto.client.aclose()
