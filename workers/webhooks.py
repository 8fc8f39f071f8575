"""Order events out: every few seconds, new events become deliveries and due deliveries are
sent, signed, to the registered endpoints (``service.events.delivery``); counted in metrics.
The API never sends a webhook: a slow or dead receiver holds up only this job."""

from __future__ import annotations

import asyncpg

from service.events.delivery import DeliveryRun, RetryPolicy, WebhookSender
from service.metrics import ORDER_EVENTS, WEBHOOK_DELIVERIES, WEBHOOK_OLDEST_PENDING
from service.settings import Settings

EVERY_SECONDS = 5
BUDGET_SECONDS = 4.0  # no new batch after this; the last one ends within WEBHOOK_TIMEOUT_SECONDS


def webhook_sender(settings: Settings, pool: asyncpg.Pool) -> WebhookSender:
    return WebhookSender(
        pool,
        timeout_seconds=settings.webhook_timeout_seconds,
        policy=RetryPolicy(
            base_seconds=settings.webhook_retry_base_seconds,
            max_delay_seconds=settings.webhook_retry_max_delay_seconds,
            retry_for_seconds=settings.webhook_retry_for_seconds,
        ),
    )


def idle(run: DeliveryRun) -> bool:
    """A run that found nothing to fan out or send (most of them, every 5 s): logged at DEBUG."""
    return run.fanned_out == 0 and run.delivered + run.retry + run.failed + run.gone == 0


async def deliver_webhooks(sender: WebhookSender, *, budget_seconds: float = BUDGET_SECONDS) -> DeliveryRun:
    run = await sender.run(budget_seconds=budget_seconds)
    for kind, count in run.kinds.items():
        ORDER_EVENTS.labels(kind=kind).inc(count)
    for outcome in ("delivered", "retry", "failed", "gone"):
        WEBHOOK_DELIVERIES.labels(outcome=outcome).inc(getattr(run, outcome))
    WEBHOOK_OLDEST_PENDING.set(run.oldest_pending_seconds)
    return run
