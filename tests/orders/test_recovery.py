"""A checkout stopped between its steps is finished by recover_stuck_checkouts: applied
when its order committed, moved back to open when it did not, exactly once even when two
recoveries run at once."""

from __future__ import annotations

import asyncio

import pytest

from service.auth import CartRef
from service.clock import now_ms
from service.errors import Unavailable
from service.orders import checkout as checkout_module, writer as writer_module
from service.orders.checkout import checkout_window_ms, commit_fence_ms
from service.orders.parts import CheckoutParts
from tests.orders.conftest import counters, guest_cart, hold, make_tier


class Crash(BaseException):
    """The process dies here: nothing after it runs, not even the saga's own clean-up."""


def crash_at(monkeypatch, step: str) -> None:
    """``write``: before the order's transaction; ``apply``: after its commit, before the
    parts are applied."""

    async def crash(*args, **kwargs):
        raise Crash(step)

    owner = writer_module.OrderWriter if step == "write" else CheckoutParts
    monkeypatch.setattr(owner, step, crash)


async def crashed_checkout(services, cart: CartRef) -> None:
    with pytest.raises(Crash):
        await services.checkouts.checkout(cart, email="a@example.com", name=None, idempotency_key=None)


def after_deadline(services) -> int:
    return now_ms() + checkout_window_ms(services.settings.database_timeout_seconds) + 1


async def part(services, event_id: str, cart: CartRef):
    return await services.scripts.view(event_id=event_id, cart_id=cart.cart_id, now_ms=now_ms())


async def orders(db_pool) -> list:
    return await db_pool.fetch("SELECT id, cart_id FROM orders")


async def test_a_checkout_killed_after_its_commit_is_applied_by_recovery(services, db_pool, monkeypatch):
    tier_id, event_id = await make_tier(services, total=10)
    cart = guest_cart()
    await hold(services, cart, tier_id, 3)
    crash_at(monkeypatch, "apply")

    await crashed_checkout(services, cart)

    assert len(await orders(db_pool)) == 1
    assert await counters(services, tier_id) == {"sold": 0, "held": 3, "available": 7, "sold_db": 3}
    assert (await part(services, event_id, cart)).state == "checkout"
    early = await services.recovery.recover(now_ms=now_ms())
    assert early.due == 0  # before the deadline the checkout may still be running

    stats = await services.recovery.recover(now_ms=after_deadline(services))

    assert (stats.due, stats.applied, stats.aborted) == (1, 1, 0)
    assert await counters(services, tier_id) == {"sold": 3, "held": 0, "available": 7, "sold_db": 3}
    assert (await part(services, event_id, cart)).state == ""
    assert (await services.recovery.recover(now_ms=after_deadline(services))).due == 0


async def test_a_checkout_killed_before_its_commit_is_moved_back_and_the_retry_makes_the_order(
    services, db_pool, monkeypatch
):
    tier_id, event_id = await make_tier(services, total=10)
    cart = guest_cart()
    await hold(services, cart, tier_id, 2)
    crash_at(monkeypatch, "write")
    await crashed_checkout(services, cart)
    named = (await part(services, event_id, cart)).order_id
    assert named

    stats = await services.recovery.recover(now_ms=after_deadline(services))

    assert (stats.applied, stats.aborted) == (0, 1)
    view = await part(services, event_id, cart)
    assert (view.state, view.order_id) == ("open", "")  # no transaction of it can commit any more
    assert await counters(services, tier_id) == {"sold": 0, "held": 2, "available": 8, "sold_db": 0}
    monkeypatch.undo()
    result = await services.checkouts.checkout(cart, email="a@example.com", name=None, idempotency_key=None)
    assert result.created and len(await orders(db_pool)) == 1


async def test_two_recoveries_at_once_resolve_every_part_exactly_once(services, db_pool, monkeypatch):
    tier_id, event_id = await make_tier(services, total=100)
    committed, uncommitted = [guest_cart() for _ in range(4)], [guest_cart() for _ in range(3)]
    for cart in committed + uncommitted:
        await hold(services, cart, tier_id, 2)
    crash_at(monkeypatch, "apply")
    for cart in committed:
        await crashed_checkout(services, cart)
    crash_at(monkeypatch, "write")
    for cart in uncommitted:
        await crashed_checkout(services, cart)

    later = after_deadline(services)
    first, second = await asyncio.gather(
        services.recovery.recover(now_ms=later), services.recovery.recover(now_ms=later)
    )

    assert first.applied + second.applied == 4
    assert first.aborted + second.aborted == 3
    assert await counters(services, tier_id) == {"sold": 8, "held": 6, "available": 86, "sold_db": 8}
    assert sorted(r["cart_id"] for r in await orders(db_pool)) == sorted(c.cart_id for c in committed)
    for cart in uncommitted:
        assert (await part(services, event_id, cart)).state == "open"


async def test_recovery_finishes_every_event_of_a_cart_and_respects_its_limit(services, db_pool, monkeypatch):
    one, _event_one = await make_tier(services)
    two, _event_two = await make_tier(services)
    cart = guest_cart()
    await hold(services, cart, one, 1)
    await hold(services, cart, two, 1)
    crash_at(monkeypatch, "apply")
    await crashed_checkout(services, cart)

    partial = await services.recovery.recover(now_ms=after_deadline(services), limit=1)
    rest = await services.recovery.recover(now_ms=after_deadline(services), limit=1)

    assert (partial.due, partial.applied, rest.applied) == (1, 1, 1)
    for tier_id in (one, two):
        assert await counters(services, tier_id) == {"sold": 1, "held": 0, "available": 9, "sold_db": 1}


async def test_a_recovery_never_settles_a_cart_whose_checkout_is_still_running(services, db_pool, monkeypatch):
    """A recovery whose clock says the deadline passed while the checkout still runs (a slow
    transaction) finds the cart's checkout lock held and leaves its part alone."""
    tier_id, event_id = await make_tier(services, total=10)
    cart = guest_cart()
    await hold(services, cart, tier_id, 2)
    real_write = writer_module.OrderWriter.write

    async def slow_write(self, *args, **kwargs):
        stats = await services.recovery.recover(now_ms=after_deadline(services))
        assert (stats.due, stats.busy, stats.aborted) == (1, 1, 0)
        return await real_write(self, *args, **kwargs)

    monkeypatch.setattr(writer_module.OrderWriter, "write", slow_write)
    result = await services.checkouts.checkout(cart, email="a@example.com", name=None, idempotency_key=None)

    assert result.created
    assert await counters(services, tier_id) == {"sold": 2, "held": 0, "available": 8, "sold_db": 2}
    assert (await part(services, event_id, cart)).state == ""
    assert len(await orders(db_pool)) == 1


async def test_recovery_with_nothing_due_changes_nothing(services):
    await make_tier(services)
    stats = await services.recovery.recover(now_ms=now_ms())
    assert (stats.due, stats.applied, stats.aborted) == (0, 0, 0) and stats.events >= 1


async def test_a_checkout_that_reaches_postgres_too_late_gives_up_so_recovery_never_races_its_commit(
    services, db_pool, monkeypatch
):
    tier_id, event_id = await make_tier(services)
    cart = guest_cart()
    await hold(services, cart, tier_id, 1)
    clock = [now_ms()]
    real_quote = checkout_module._Checkout.quote

    async def stalled_quote(self, items):  # the process froze between its begin and its transaction
        clock[0] += commit_fence_ms(services.settings.database_timeout_seconds) + 1
        return await real_quote(self, items)

    monkeypatch.setattr(checkout_module._Checkout, "quote", stalled_quote)
    with pytest.raises(Unavailable):
        await services.checkouts.checkout(
            cart, email="a@example.com", name=None, idempotency_key=None, clock=lambda: clock[0]
        )

    assert len(await orders(db_pool)) == 0
    assert (await part(services, event_id, cart)).state == "open"
    assert await counters(services, tier_id) == {"sold": 0, "held": 1, "available": 9, "sold_db": 0}


async def test_a_checkout_failing_just_before_the_hold_expires_leaves_the_buyer_a_minute_to_retry(
    services, monkeypatch
):
    tier_id, event_id = await make_tier(services)
    cart = guest_cart()
    await hold(services, cart, tier_id, 2)
    expiry = (await part(services, event_id, cart)).expiry_ms
    at = expiry - 1_000  # a second of the hold left when the checkout starts

    async def connection_lost(self, *args, **kwargs):  # before the COMMIT: certainly not committed
        raise ConnectionResetError("PostgreSQL went away mid-transaction")

    monkeypatch.setattr(writer_module.OrderWriter, "transaction", connection_lost)
    with pytest.raises(Unavailable):
        await services.checkouts.checkout(
            cart, email="a@example.com", name=None, idempotency_key=None, clock=lambda: at
        )

    reopened = await part(services, event_id, cart)
    assert (reopened.state, reopened.expiry_ms) == ("open", at + 60_000)
    await services.scripts.sweep(event_id=event_id, now_ms=at + 30_000, limit=100)
    view = await services.scripts.view(event_id=event_id, cart_id=cart.cart_id, now_ms=at + 30_000)
    assert view.lines[tier_id].quantity == 2  # still held half a minute later: the retry can buy them
    assert await counters(services, tier_id) == {"sold": 0, "held": 2, "available": 8, "sold_db": 0}
