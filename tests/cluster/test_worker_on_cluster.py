"""The worker on a 3-master cluster: its jobs run per event on whichever master holds the
event, and arq keeps its queue on the standalone Redis ARQ_REDIS_URL names."""

from __future__ import annotations

import msgspec
import pytest

from service.settings import SettingsError
from tests.cluster.conftest import event_on
from tests.worker_jobs import burst_run
from tests.workers.conftest import TTL_MS, counters, hold, make_tier, now_ms
from workers.main import create_worker_settings
from workers.sweep import sweep_expired_parts

pytestmark = pytest.mark.usefixtures("clean_state")


async def test_the_sweep_releases_expired_holds_on_every_master(services, redis_cluster):
    rows = [await make_tier(services, total=10, event_id=event_on(redis_cluster, port)) for port in redis_cluster.ports]
    for row in rows:
        await hold(services, row, 2)
        await hold(services, row, 1)

    stats = await sweep_expired_parts(services, now_ms=now_ms() + TTL_MS + 1)

    assert stats.released == 6 and stats.events == 3
    for row in rows:
        tier = await counters(services, row)
        assert (tier.held, tier.available) == (0, 10)


async def test_the_arq_worker_runs_reconcile_on_the_cluster_with_its_queue_on_arq_redis_url(services, settings):
    assert settings.redis_cluster and settings.arq_redis_url
    row = await make_tier(services, total=8, sold=3, load=False)  # in PostgreSQL only
    async with burst_run(settings, "reconcile") as (worker, (job,)):
        result = await job.result(timeout=5)
        assert result["loaded"] >= 1 and worker.jobs_failed == 0
        tier = await counters(services, row)  # read on the cluster
        assert (tier.total, tier.sold, tier.held) == (8, 3, 0)


def test_the_worker_refuses_a_cluster_without_arq_redis_url(settings):
    with pytest.raises(SettingsError, match="REDIS_CLUSTER=1 needs ARQ_REDIS_URL"):
        create_worker_settings(msgspec.structs.replace(settings, arq_redis_url=None))
