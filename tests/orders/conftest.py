"""Fixtures and helpers of the checkout tests: an API client, the services the saga runs
on (built as the app builds them), and short ways to make tiers and hold seats."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

from service.auth import CartRef
from service.inventory.dto import TierDefinition
from service.wiring import Services
from tests.api import api_client, running_services


@pytest_asyncio.fixture(loop_scope="session")
async def client(settings, clean_state):
    """The app in process, on the test servers, from nothing."""
    async with api_client(settings) as api:
        yield api


@pytest_asyncio.fixture(loop_scope="session")
async def services(settings, db_pool, clean_state) -> AsyncIterator[Services]:
    """What the API and the worker run on, for tests that call the domain directly."""
    async with running_services(settings, db_pool) as built:
        yield built


async def make_tier(
    services: Services,
    *,
    total: int = 10,
    price: int = 100_000,
    event_id: str | None = None,
    max_per_order: int = 10,
    currency: str = "VND",
) -> tuple[str, str]:
    """A new tier (tier id, event id), loaded in Redis."""
    tier_id, event_id = str(uuid.uuid4()), event_id or str(uuid.uuid4())
    await services.inventory.put_tier(
        tier_id,
        TierDefinition(
            event_id=uuid.UUID(event_id),
            name=f"Tier {tier_id[:4]}",
            price=price,
            currency=currency,
            quantity_total=total,
            max_per_order=max_per_order,
        ),
    )
    return tier_id, event_id


async def hold(services: Services, cart: CartRef, tier_id: str, quantity: int) -> None:
    await services.carts.change(cart, tier_id, quantity, "add", uuid.uuid4().hex)


def guest_cart() -> CartRef:
    return CartRef(cart_id=str(uuid.uuid4()))


async def counters(services: Services, tier_id: str) -> dict[str, int]:
    """Redis's counters of the tier and PostgreSQL's quantity_sold."""
    view = await services.inventory.get_tier(tier_id)
    inv = view.inventory
    return {"sold": inv.sold, "held": inv.held, "available": inv.available, "sold_db": inv.sold_db}
