"""Embedded Redis: a private server starts, stops, restarts on its port, pauses, and is shared
between processes so that only the last live holder stops it."""

import subprocess
import sys
import time

import pytest
import redis

from devtools import PROJECT_ROOT
from devtools.embedded import start_embedded_redis


def _client(url: str, timeout: float = 1.0) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def _answers(url: str) -> bool:
    try:
        return _client(url).ping()
    except redis.ConnectionError:
        return False


def test_stop_then_start_restarts_on_the_same_port_and_empty(private_redis):
    server = private_redis("restart")
    url = server.url
    _client(url).set(b"k", b"v")

    server.stop()
    assert not _answers(url)

    server.start()
    assert server.url == url
    assert _client(url).get(b"k") is None  # no persistence: a restart is a flushed Redis


def test_pause_freezes_the_server_then_it_answers_again(private_redis):
    server = private_redis("pause")
    server.pause(0.6)
    with pytest.raises(redis.TimeoutError):
        _client(server.url, timeout=0.2).ping()
    time.sleep(0.6)
    assert _client(server.url).ping()


def test_only_the_last_live_holder_stops_a_shared_server(private_redis):
    server = private_redis("shared")
    other_process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from devtools.embedded import start_embedded_redis;"
            "print(start_embedded_redis(Path(sys.argv[1])).url, flush=True); sys.stdin.read()",
            str(server.data_dir),
        ],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other_process.stdout.readline().strip() == server.url  # it attached, not started

        server.release()
        assert _answers(server.url), "released while another process still holds it"
    finally:
        other_process.kill()  # no clean-up: its hold must not pin the server forever
        other_process.wait()

    last = start_embedded_redis(server.data_dir)
    assert last.url == server.url
    last.release()
    assert not _answers(server.url)


def test_two_handles_in_one_process_hold_separately(private_redis):
    first = private_redis("handles")
    second = start_embedded_redis(first.data_dir)
    second.release()
    second.release()  # releasing twice is harmless
    assert _answers(first.url)
