"""CPU time of a process group, from ``/proc/<pid>/stat`` (Linux): what a server's
processes (uvicorn's supervisor and its workers) spent, read before and after a phase; and
Redis's, from its own ``INFO cpu``.

On a shared machine the rate a server reaches moves with others' load; the CPU it spends
per request moves far less, so it is the steadier measure of what a change costs.
"""

from __future__ import annotations

import os
from collections.abc import Callable

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu_seconds(pgid: int) -> float | None:
    """User + system CPU seconds of the live processes in group ``pgid``; None off Linux."""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                line = stat.read()
        except OSError:  # gone since the listing
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = line[line.rindex(b")") + 2 :].split()
        if int(fields[2]) == pgid:  # fields: state, ppid, pgrp, ..., utime (11), stime (12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _TICKS


def redis_cpu_meter(redis_url: str) -> Callable[[], float | None]:
    """A function that reads Redis's CPU seconds so far (``used_cpu_user`` + ``used_cpu_sys``
    of ``INFO cpu``: the whole server's, every client's work), or None when it cannot."""
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(redis_url, socket_timeout=2)

    def read() -> float | None:
        try:
            info = client.info("cpu")
        except RedisError:
            return None
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    return read
