"""arq settings of the worker: ``arq workers.main.WorkerSettings``.

The class is built on first access from ``Settings.from_env()`` (like ``service.app:app``),
so importing this module reads no environment. Start-up builds the same services the API
uses (``open_services``), loads the Lua scripts and starts the metrics server; PostgreSQL
need not answer then (the pool connects on first use: jobs that need it fail until it
answers, and run again the next minute). Every job runs each minute (order webhooks every 5
seconds) on whichever worker takes it first (cron ``unique``), and is idempotent, so several
worker processes are safe. Start-up also makes the webhook sender (its HTTP client).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from arq import cron
from arq.connections import RedisSettings
from arq.cron import CronJob

from service.logs import configure_logging
from service.metrics import start_worker_metrics_server
from service.settings import Settings, SettingsError
from service.wiring import close_services, open_services
from workers.expiry import expire_orders
from workers.logs import worker_log
from workers.reconcile import reconcile_inventory
from workers.recovery import recover_checkouts
from workers.summary import run_job
from workers.sweep import sweep_expired_parts
from workers.webhooks import EVERY_SECONDS, deliver_webhooks, idle, webhook_sender

JOB_TIMEOUT_SECONDS = 120
# Results are kept a little past the next run, so a worker whose clock lags cannot enqueue
# a cron tick again after another worker finished it.
KEEP_RESULT_SECONDS = 120

Ctx = dict[str, Any]


async def startup(ctx: Ctx) -> None:
    settings: Settings = ctx["settings"]
    configure_logging(settings.log_level)
    # In development a second instance (another make run, a bench) may hold the port: the
    # metrics then go to a free one, said in the start line. In production it is an error.
    metrics_port = start_worker_metrics_server(
        settings.worker_metrics_port, or_any_free_port=not settings.is_production
    )
    services = await open_services(settings)
    ctx["services"] = services
    ctx["webhooks"] = webhook_sender(settings, services.pool)
    fields = {"queue": queue_of(settings), "metrics_port": metrics_port}
    if metrics_port not in (None, settings.worker_metrics_port):
        fields["metrics_port_taken"] = settings.worker_metrics_port
    worker_log().info("worker started", **fields)


async def shutdown(ctx: Ctx) -> None:
    webhooks = ctx.pop("webhooks", None)
    if webhooks is not None:
        await webhooks.aclose()
    services = ctx.pop("services", None)
    if services is not None:
        await close_services(services)


# -- the cron jobs: thin wrappers that hand the services to the plain job functions ---------


async def sweep_job(ctx: Ctx) -> dict[str, Any]:
    return await run_job("sweep", lambda: sweep_expired_parts(ctx["services"]))


async def recovery_job(ctx: Ctx) -> dict[str, Any]:
    return await run_job("recover_checkouts", lambda: recover_checkouts(ctx["services"]))


async def reconcile_job(ctx: Ctx) -> dict[str, Any]:
    return await run_job("reconcile", lambda: reconcile_inventory(ctx["services"]))


async def expiry_job(ctx: Ctx) -> dict[str, Any]:
    return await run_job("expire_orders", lambda: expire_orders(ctx["services"]))


async def webhooks_job(ctx: Ctx) -> dict[str, Any]:
    return await run_job("deliver_webhooks", lambda: deliver_webhooks(ctx["webhooks"]), idle=idle)


def minute_jobs(settings: Settings) -> list[CronJob]:
    """The jobs, each once a minute (deliver_webhooks every 5 s), spread over the minute so
    they rarely overlap; the sweep goes first so the reconciler reads fewer parts, and
    reconcile also runs at start-up (a cold Redis is refilled). arq names a tick's job
    ``<name>:<time>`` in keys shared by every queue on the server, so the names carry the key
    prefix: two deployments on one Redis must not take each other's ticks."""

    def every_minute(
        job: Callable[[Ctx], Awaitable[dict[str, Any]]], name: str, second: int | set[int], **options: Any
    ) -> CronJob:
        # arg-type: arq's WorkerCoroutine protocol asks for *args and **kwargs, which arq never
        # passes a cron job (it calls it with ctx alone).
        return cron(
            job,  # type: ignore[arg-type]
            name=f"{settings.key_prefix}{name}",
            second=second,
            unique=True,
            timeout=JOB_TIMEOUT_SECONDS,
            keep_result=KEEP_RESULT_SECONDS,
            max_tries=1,
            **options,
        )

    return [
        every_minute(sweep_job, "sweep", second=0),
        every_minute(recovery_job, "recover_checkouts", second=15),
        every_minute(reconcile_job, "reconcile", second=30, run_at_startup=True),
        every_minute(expiry_job, "expire_orders", second=45),
        # Order webhooks every few seconds, not each minute: a receiver hears of an order soon.
        every_minute(webhooks_job, "deliver_webhooks", second=set(range(0, 60, EVERY_SECONDS))),
    ]


def queue_of(settings: Settings) -> str:
    """The arq queue, under the key prefix: deployments sharing a Redis keep apart."""
    return f"{settings.key_prefix}arq:queue"


def create_worker_settings(settings: Settings) -> type:
    if settings.redis_cluster and not settings.arq_redis_url:
        # arq's connection is a plain Redis client, and it writes a job and its queue (keys
        # in different slots) in one MULTI: it cannot keep its queue on a cluster.
        raise SettingsError(
            "REDIS_CLUSTER=1 needs ARQ_REDIS_URL: arq cannot keep its job queue on a Redis "
            "Cluster; name a standalone Redis for it (the cluster still holds the carts)"
        )

    class WorkerSettings:
        """What arq reads (``arq.worker.Worker``'s parameters), for these settings."""

        redis_settings = RedisSettings.from_dsn(settings.queue_redis_url)
        queue_name = queue_of(settings)
        cron_jobs = minute_jobs(settings)
        on_startup = startup
        on_shutdown = shutdown
        ctx: ClassVar[Ctx] = {"settings": settings}
        job_timeout = JOB_TIMEOUT_SECONDS
        keep_result = KEEP_RESULT_SECONDS
        max_jobs = 6  # one of each job at a time, and a webhook run overlapping the next

    return WorkerSettings


def __getattr__(name: str) -> type:
    # `arq workers.main.WorkerSettings` builds the class on first access.
    if name == "WorkerSettings":
        worker_settings = create_worker_settings(Settings.from_env())
        globals()["WorkerSettings"] = worker_settings
        return worker_settings
    raise AttributeError(name)
