"""One make bench at a time against the same servers: a second would drop the first's
database and delete its keys."""

from __future__ import annotations

import uuid

import pytest

from loadtest.bench import BenchBusy, lock_path, one_bench_at_a_time


def test_a_second_bench_on_the_same_servers_is_refused_until_the_first_is_done() -> None:
    servers = f"postgresql://test-{uuid.uuid4()} redis://test"
    with one_bench_at_a_time(servers):
        with pytest.raises(BenchBusy, match="another make bench is running"), one_bench_at_a_time(servers):
            pass
        with one_bench_at_a_time(f"{servers}-elsewhere"):
            pass  # other servers: no conflict
    with one_bench_at_a_time(servers):
        pass  # released
    for key in (servers, f"{servers}-elsewhere"):
        lock_path(key).unlink()
