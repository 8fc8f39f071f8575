"""CPU time of a process group, from ``/proc/<pid>/stat`` (Linux): what a server's
processes (uvicorn's supervisor and its workers) spent, read before and after a phase.

On a shared machine the rate a server reaches moves with others' load; the CPU it spends
per request moves far less, so it is the steadier measure of what a change costs.
"""

from __future__ import annotations

import os

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
