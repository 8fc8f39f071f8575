"""The HTTP client and the two loops, against a tiny scripted HTTP server in the test.

The open-loop test proves the measurement is free of coordinated omission: requests that
queue behind a slow answer are timed from when they were due, not from when they went out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from loadtest.catalog import Catalog
from loadtest.client import Connection, ConnectionFailed, Target, encode_request
from loadtest.engine import Backlog, Share, ShareSpec
from loadtest.scenarios import SCENARIOS, Call, Flow, FlowContext, Scenario


class ScriptedServer:
    """Answers by path: /ok, /chunked, /close, /slow (50 ms), /hang, /drop, /problem."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None
        self.url = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                if path == "/hang":
                    await asyncio.sleep(30)
                if path == "/drop":
                    return
                if path == "/slow":
                    await asyncio.sleep(0.05)
                writer.write(self.answer(path))
                await writer.drain()
                if path == "/close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    @staticmethod
    def answer(path: str) -> bytes:
        if path == "/chunked":
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        if path == "/close":
            return b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
        if path == "/problem":
            body = b'{"code":"sold-out","available":0}'
            return (
                b"HTTP/1.1 409 Conflict\r\nContent-Type: application/problem+json\r\nX-Cart-Token: tok-1\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest_asyncio.fixture(loop_scope="session")
async def scripted() -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer()
    await server.start()
    yield server
    assert server.server is not None
    server.server.close()


def get(target: Target, path: str) -> bytes:
    return encode_request(target, "GET", path, {}, None)


async def test_requests_share_one_keep_alive_connection(scripted: ScriptedServer) -> None:
    target = Target(scripted.url)
    connection = Connection(target)
    before = scripted.connections
    for _ in range(3):
        assert (await connection.send(get(target, "/ok"))).body == b"ok"
    assert scripted.connections - before == 1 and connection.reconnects == 0
    connection.close()


async def test_a_chunked_body_arrives_whole() -> None:
    server = ScriptedServer()
    await server.start()
    target = Target(server.url)
    connection = Connection(target)
    assert (await connection.send(get(target, "/chunked"))).body == b"abcde"
    connection.close()


async def test_connection_close_makes_the_next_request_reconnect(scripted: ScriptedServer) -> None:
    target = Target(scripted.url)
    connection = Connection(target)
    assert (await connection.send(get(target, "/close"))).status == 200
    assert (await connection.send(get(target, "/ok"))).status == 200
    assert connection.reconnects == 1
    connection.close()


async def test_a_request_without_answer_times_out_and_the_connection_recovers(scripted: ScriptedServer) -> None:
    target = Target(scripted.url)
    connection = Connection(target, timeout=0.1)
    with pytest.raises(asyncio.TimeoutError):
        await connection.send(get(target, "/hang"))
    assert (await connection.send(get(target, "/ok"))).status == 200
    connection.close()


async def test_a_connection_dropped_mid_request_raises(scripted: ScriptedServer) -> None:
    target = Target(scripted.url)
    connection = Connection(target)
    with pytest.raises(ConnectionFailed):
        await connection.send(get(target, "/drop"))
    connection.close()


async def test_problem_code_and_cart_token_are_read(scripted: ScriptedServer) -> None:
    target = Target(scripted.url)
    connection = Connection(target)
    answer = await connection.send(get(target, "/problem"))
    assert answer.status == 409 and answer.json() == {"code": "sold-out", "available": 0}
    assert answer.header("X-Cart-Token") == "tok-1"
    connection.close()


def test_a_request_carries_host_length_and_body() -> None:
    raw = encode_request(Target("http://h:81/base"), "POST", "/x", {"X-A": "1"}, b'{"q":1}')
    assert raw == (
        b"POST /base/x HTTP/1.1\r\nHost: h:81\r\nX-A: 1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 7\r\n\r\n{"q":1}'
    )


def probe_flow(ctx: FlowContext) -> Flow:
    yield Call("probe", "GET", "/slow")


def spec(url: str, mode: str, **changes: object) -> ShareSpec:
    fields = dict(
        base_url=url,
        scenario="probe",
        mode=mode,
        connections=1,
        rate=100.0,
        duration=0.3,
        buyers=None,
        catalog=Catalog(run_id="T"),
        headers={},
        timeout=5.0,
        seed=1,
        worker=0,
    )
    return ShareSpec(**{**fields, **changes})  # type: ignore[arg-type]


async def run_share(share_spec: ShareSpec) -> Share:
    share = Share(share_spec)
    await share.connect()
    await share.run(time.monotonic() + 0.01)
    return share


async def test_open_loop_times_queued_requests_from_when_they_were_due(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(SCENARIOS, "probe", Scenario("probe", "50 ms answers", "none", probe_flow))
    closed = (await run_share(spec(scripted.url, "closed"))).stats.ops["probe"].latency
    opened = (await run_share(spec(scripted.url, "open"))).stats.ops["probe"].latency

    # One connection, 50 ms per answer, 100 due per second: each waits for those before it.
    assert opened.count == 30
    assert opened.max_us > 0.5e6  # the last was due at 0.29 s and answered near 1.5 s
    assert opened.percentile(50) > 4 * closed.percentile(50)


async def test_a_finite_scenario_ends_when_its_buyers_are_done(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(SCENARIOS, "probe", Scenario("probe", "", "none", probe_flow, finite=True))
    started = time.monotonic()
    share = await run_share(spec(scripted.url, "closed", connections=2, buyers=4, duration=30.0))
    assert time.monotonic() - started < 10  # nowhere near the 30 s bound
    assert share.stats.buyers_finished == 4 and share.stats.ops["probe"].ok == 4


async def test_the_connection_idle_most_recently_takes_the_next_request() -> None:
    backlog = Backlog()
    first = asyncio.ensure_future(backlog.take())
    await asyncio.sleep(0)
    second = asyncio.ensure_future(backlog.take())
    await asyncio.sleep(0)
    backlog.put((1.0, "a"))  # type: ignore[arg-type]
    assert len(backlog) == 1  # handed over, not yet sent
    await asyncio.sleep(0)
    assert second.done() and not first.done() and len(backlog) == 0
    backlog.put((2.0, "b"))  # type: ignore[arg-type]
    assert await first == (2.0, "b")


def hang_flow(ctx: FlowContext) -> Flow:
    yield Call("probe", "GET", "/hang")


async def test_the_engine_times_out_a_request_that_gets_no_answer(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(SCENARIOS, "probe", Scenario("probe", "", "none", hang_flow, finite=True))
    started = time.monotonic()
    share = await run_share(spec(scripted.url, "closed", buyers=1, duration=30.0, timeout=0.2))
    assert share.stats.ops["probe"].errors == {"timeout": 1}
    assert time.monotonic() - started < 5
