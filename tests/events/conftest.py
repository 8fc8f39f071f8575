"""Fixtures of the order-event tests: the app in process and the services it runs on, the
worker's webhook sender, the admin's endpoints and a receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from service.events.delivery import RetryPolicy, WebhookSender
from service.events.endpoints import WebhookEndpoints
from service.wiring import Services
from tests.api import api_client, running_services
from tests.events.receiver import Receiver


@pytest_asyncio.fixture(loop_scope="session")
async def client(settings, clean_state):
    """The app in process, on the test servers, from nothing."""
    async with api_client(settings) as api:
        yield api


@pytest_asyncio.fixture(loop_scope="session")
async def services(settings, db_pool, clean_state) -> AsyncIterator[Services]:
    async with running_services(settings, db_pool) as built:
        yield built


@pytest_asyncio.fixture(loop_scope="session")
async def endpoints(db_pool, clean_state):
    return WebhookEndpoints(db_pool)


@pytest_asyncio.fixture(loop_scope="session")
async def sender(db_pool, clean_state) -> AsyncIterator[WebhookSender]:
    """The worker's sender with a long backoff: a test makes failed deliveries due again
    itself (``due_now``), as time passing would."""
    made = WebhookSender(db_pool, timeout_seconds=2.0, policy=RetryPolicy(base_seconds=3600))
    yield made
    await made.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver that is down (nothing listening) until the test starts it."""
    made = Receiver()
    yield made
    await made.stop()


async def due_now(db_pool) -> None:
    """Every pending delivery due now: the time its backoff asked for has passed."""
    await db_pool.execute("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE status = 'pending'")


async def drain(sender: WebhookSender, db_pool, *, rounds: int = 20) -> None:
    """Run the sender until no delivery is pending (at most ``rounds`` runs)."""
    for _ in range(rounds):
        await due_now(db_pool)
        await sender.run()
        if not await db_pool.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"):
            return
    raise AssertionError("deliveries still pending")
