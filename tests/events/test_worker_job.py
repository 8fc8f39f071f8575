"""deliver_webhooks as the arq worker runs it: the sender built at start-up on the worker's
services, the job's run counted in the metrics, the sender closed at shutdown."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY

from service.events.dto import NewEndpoint
from service.events.outbox import ORDER_CREATED, record_event
from service.events.signing import verify
from tests.events.test_outbox import an_order
from tests.worker_jobs import burst_run


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_worker_delivers_a_recorded_event_and_counts_it(settings, db_pool, endpoints, receiver):
    await receiver.start()
    endpoint = await endpoints.register(NewEndpoint(url=receiver.url, events=["order.created"]))
    async with db_pool.acquire() as conn, conn.transaction():
        event_id = await record_event(conn, ORDER_CREATED, await an_order(db_pool), {})
    before = (
        sample("tc_order_events_total", kind="order.created"),
        sample("tc_webhook_deliveries_total", outcome="delivered"),
    )
    async with burst_run(settings, "deliver_webhooks") as (worker, (job,)):
        result = await job.result(timeout=5)

    assert (result["fanned_out"], result["delivered"], result["kinds"]) == (1, 1, {"order.created": 1})
    (got,) = receiver.accepted
    verify(endpoint.secret, got.headers, got.body, now=int(time.time()))
    assert got.headers["webhook-id"] == str(event_id)
    after = (
        sample("tc_order_events_total", kind="order.created"),
        sample("tc_webhook_deliveries_total", outcome="delivered"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    assert sample("tc_webhook_oldest_pending_seconds") == 0
    assert "webhooks" not in worker.ctx  # on_shutdown closed the sender
