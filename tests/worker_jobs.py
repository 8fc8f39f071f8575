"""Run service jobs as the arq worker runs them: enqueued under the service's own names,
executed by a burst worker built from the service's settings (``create_worker_settings``),
the jobs' keys deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from arq.connections import create_pool
from arq.jobs import Job
from arq.worker import Worker, get_kwargs

from service.settings import Settings
from workers.main import create_worker_settings


@asynccontextmanager
async def burst_run(settings: Settings, *job_names: str) -> AsyncIterator[tuple[Worker, list[Job]]]:
    """Enqueue ``job_names`` (e.g. "reconcile"), run a burst worker until the queue is empty
    (its metrics port off), and yield the stopped worker with the jobs, to read their results."""
    worker_settings = create_worker_settings(msgspec.structs.replace(settings, worker_metrics_port=0))
    queue = await create_pool(worker_settings.redis_settings, default_queue_name=worker_settings.queue_name)
    job_ids = [f"test-{name}-{uuid.uuid4()}" for name in job_names]
    try:
        jobs = []
        for name, job_id in zip(job_names, job_ids, strict=True):
            job = await queue.enqueue_job(f"{settings.key_prefix}{name}", _job_id=job_id)
            assert job is not None, f"job {job_id} was not enqueued"
            jobs.append(job)
        worker = Worker(**get_kwargs(worker_settings), burst=True, handle_signals=False, poll_delay=0.05)
        try:
            await worker.async_run()
        finally:
            await worker.close()
        yield worker, jobs
    finally:
        for job_id in job_ids:
            await queue.delete(f"arq:result:{job_id}")
        await queue.aclose()
