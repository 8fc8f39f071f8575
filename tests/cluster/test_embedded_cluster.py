"""The local cluster itself: slots split over the masters, and a cluster left behind by a
run that died is stopped by the next one, while a live run's cluster is left alone."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

from devtools import DATA_DIR, PROJECT_ROOT
from devtools.embedded_cluster import HASH_SLOTS, stop_abandoned
from devtools.embedded_servers import _alive, _redis_pings
from tests.conftest import RUN_ID

START_ONE_MASTER = """
import sys, time
from pathlib import Path
from devtools.embedded_cluster import EmbeddedCluster
EmbeddedCluster(Path(sys.argv[1]), masters=1).start()
print("up", flush=True)
time.sleep(120)
"""


def test_the_masters_share_every_slot_once(redis_cluster):
    ranges = redis_cluster.slot_ranges()
    assert ranges[0][0] == 0 and ranges[-1][1] == HASH_SLOTS - 1
    assert all(left[1] + 1 == right[0] for left, right in itertools.pairwise(ranges))
    assert [redis_cluster.port_of_slot(first) for first, _ in ranges] == redis_cluster.ports


def test_a_live_runs_cluster_is_left_alone(redis_cluster):
    assert stop_abandoned(redis_cluster.data_dir) is False
    assert all(_redis_pings(port) for port in redis_cluster.ports)


def test_the_cluster_of_a_run_that_died_is_stopped_and_removed():
    data_dir = DATA_DIR / f"test-cluster-{RUN_ID}-orphan"
    owner = subprocess.Popen(
        [sys.executable, "-c", START_ONE_MASTER, str(data_dir)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout.readline().strip() == "up"
    finally:
        owner.kill()  # as kill -9: no clean-up ran
        owner.wait()
    node = json.loads((data_dir / "cluster.json").read_text())["nodes"][0]
    assert _redis_pings(node["port"])

    assert stop_abandoned(data_dir) is True

    deadline = time.monotonic() + 10
    while _alive(node["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _redis_pings(node["port"]) and not data_dir.exists()
