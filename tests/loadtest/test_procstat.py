"""CPU of a process group from /proc: a child of its own session that has worked shows CPU."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loadtest.procstat import group_cpu_seconds

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")

# A fixed amount of work (not a time), then it waits to be read.
_WORK = "sum(i * i for i in range(3_000_000)); print('done', flush=True); input()"


def test_a_group_that_worked_has_spent_cpu_and_an_empty_one_none() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _WORK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"done\n"
        spent = group_cpu_seconds(child.pid)
    finally:
        child.kill()
        child.wait()
    assert spent is not None and spent > 0
    assert group_cpu_seconds(child.pid) == 0.0  # the group is gone
