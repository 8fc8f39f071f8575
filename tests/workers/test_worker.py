"""The arq worker itself: its settings, and a real Worker on the test Redis that starts
up (services, scripts), runs a queued job, and shuts down."""

from __future__ import annotations

import json
import socket
import urllib.request
import uuid

import msgspec
import pytest
from arq.worker import get_kwargs

import workers.main
from service.metrics import MetricsPortTaken, start_worker_metrics_server
from tests.conftest import TEST_SECRETS
from tests.worker_jobs import burst_run
from tests.workers.conftest import counters, hold, make_tier, now_ms


def test_worker_settings_come_from_the_environment_with_the_queue_on_arq_redis_url(monkeypatch):
    for name, value in {**TEST_SECRETS, "ARQ_REDIS_URL": "redis://queue.example:6380/3", "KEY_PREFIX": "tcx:"}.items():
        monkeypatch.setenv(name, value)
    try:
        settings_class = workers.main.WorkerSettings
    finally:
        del workers.main.WorkerSettings
    options = get_kwargs(settings_class)
    redis_settings = options["redis_settings"]
    assert (redis_settings.host, redis_settings.port, redis_settings.database) == ("queue.example", 6380, 3)
    assert options["queue_name"] == "tcx:arq:queue"
    jobs = {job.name: job for job in options["cron_jobs"]}
    assert sorted(jobs) == [
        "tcx:deliver_webhooks",
        "tcx:expire_orders",
        "tcx:reconcile",
        "tcx:recover_checkouts",
        "tcx:sweep",
    ]
    assert jobs["tcx:deliver_webhooks"].second == set(range(0, 60, 5))
    assert all(job.unique and job.minute is None for job in jobs.values())


async def test_the_arq_worker_starts_runs_a_queued_job_and_shuts_down(services, settings):
    row = await make_tier(services, total=8, sold=3, load=False)  # in PostgreSQL only
    async with burst_run(settings, "reconcile") as (worker, (job,)):
        result = await job.result(timeout=5)
        assert {"events", "tiers", "loaded", "held_drift", "sold_drift"} <= set(result)
        assert worker.jobs_failed == 0 and worker.jobs_complete >= 1
        assert "services" not in worker.ctx  # on_shutdown closed them
        tier = await counters(services, row)
        assert (tier.total, tier.sold, tier.held) == (8, 3, 0)


async def test_the_arq_worker_starts_without_postgres_and_runs_the_jobs_that_need_only_redis(settings):
    settings = msgspec.structs.replace(
        settings,
        database_timeout_seconds=1.0,
        database_url="postgresql://postgres@127.0.0.1:9/nothing-listens",
    )
    async with burst_run(settings, "sweep", "reconcile") as (worker, (sweep, reconcile)):  # starts without PostgreSQL
        assert "released" in await sweep.result(timeout=5)
        assert not (await reconcile.result_info()).success  # the next minute's run tries again
        assert worker.jobs_failed >= 1


def test_a_taken_metrics_port_moves_to_a_free_one_in_development_and_is_named_in_production():
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(MetricsPortTaken, match=f"metrics port {port} [(]WORKER_METRICS_PORT[)] is in use"):
            start_worker_metrics_server(port)
        served = start_worker_metrics_server(port, or_any_free_port=True)

    assert served not in (None, port)
    with urllib.request.urlopen(f"http://127.0.0.1:{served}/metrics", timeout=5) as answer:
        assert b"tc_worker_job" in answer.read()
    assert start_worker_metrics_server(0) is None


async def test_the_worker_writes_the_info_lines_of_shared_domain_code(services, settings, capsys):
    """One logging set-up for the API and the worker: a checkout the worker recovers is
    logged by the order domain (logger ticket_cart.orders, INFO) in the worker's output, in
    the same JSON lines as the worker's own."""
    row = await make_tier(services, total=10)
    cart = await hold(services, row, 2)
    await services.scripts.checkout_begin(
        cart_id=cart,
        event_ids=[str(row.event_id)],
        order_id=str(uuid.uuid4()),
        replace="",
        now_ms=now_ms(),
        deadline_ms=now_ms() - 1,
    )
    async with burst_run(msgspec.structs.replace(settings, log_level="INFO"), "recover_checkouts"):
        pass

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (domain,) = [
        line for line in lines if line["logger"] == "ticket_cart.orders" and line["msg"].startswith("checkout recovery")
    ]
    # The enqueued run's summary; a cron tick landing during the burst may add a run that
    # found nothing (seen once in CI: two "job done" lines of recover_checkouts).
    summaries = [line for line in lines if line["msg"] == "job done" and line["job"] == "recover_checkouts"]
    summary = next((line for line in summaries if line.get("aborted")), summaries[0] if summaries else None)
    assert summary is not None, lines
    assert (domain["level"], summary["logger"], summary["job"], summary["aborted"]) == (
        "info",
        "ticket_cart.worker",
        "recover_checkouts",
        1,
    )
    assert {"ts", "level", "logger", "msg"} <= domain.keys() & summary.keys()
