"""Reconcile racing the cart and the checkout: in many randomised rounds, holds, releases,
checkouts (begin, PostgreSQL commit, apply, abort) and order expiries run concurrently with
the reconciler, and Redis never shows more seats than the truth: total - sold in
PostgreSQL - seats held by parts whose order is not committed."""

from __future__ import annotations

import asyncio
import random
import uuid

import msgspec
import pytest

from service.wiring import Services
from tests.workers.conftest import SELL, TTL_MS, make_tier, now_ms
from workers.reconcile import reconcile_inventory

ROUNDS = 40
TOTAL = 12


class Market:
    """One event with two tiers, thirty buyers, and what the test knows about orders."""

    def __init__(self, services: Services, rows, seed: int) -> None:
        self.services = services
        self.rows = rows
        self.event_id = str(rows[0].event_id)
        self.rng = random.Random(seed)
        self.carts = [f"buyer-{i}" for i in range(30)]
        self.orders: dict[str, str] = {}  # cart -> the order id its part names
        self.committed: dict[str, list[tuple[str, int, int]]] = {}  # cart -> its (tier, version, delta)
        # Carts a checkout step is working on: like the cart's checkout lock, one at a time.
        self.busy: set[str] = set()

    async def reserve(self) -> None:
        row = self.rng.choice(self.rows)
        mode, quantity = self.rng.choice([("add", 1), ("add", 2), ("add", 3), ("set", 0)])
        cart = self.rng.choice(self.carts)
        await self.services.scripts.reserve(
            event_id=self.event_id,
            cart_id=cart,
            tier_id=str(row.id),
            quantity=quantity,
            mode=mode,
            now_ms=now_ms(),
            ttl_ms=TTL_MS,
            max_lines=20,
            sweep_limit=0,
            request_id="",
            meta_fields={f"ev:{self.event_id}": "1"},
            meta_ttl_ms=2 * TTL_MS,
        )

    async def release(self) -> None:
        await self.services.scripts.clear_part(event_id=self.event_id, cart_id=self.rng.choice(self.carts))

    async def begin(self) -> None:
        await self._locked(self.carts, self._begin)

    async def checkout(self) -> None:
        """A whole checkout saga in one go: begin, commit, apply."""

        async def saga(cart: str) -> None:
            await self._begin(cart)
            if cart in self.orders and cart not in self.committed:
                await self._commit(cart)
            if cart in self.committed:
                await self._apply(cart)

        await self._locked(self.carts, saga)

    async def commit(self) -> None:
        await self._locked([c for c in self.orders if c not in self.committed], self._commit)

    async def apply(self) -> None:
        await self._locked(list(self.committed), self._apply)

    async def abort(self) -> None:
        await self._locked([c for c in self.orders if c not in self.committed], self._abort)

    async def _locked(self, carts: list[str], step) -> None:
        free = sorted(c for c in carts if c not in self.busy)
        if not free:
            return
        cart = self.rng.choice(free)
        self.busy.add(cart)
        try:
            await step(cart)
        finally:
            self.busy.discard(cart)

    async def _begin(self, cart: str) -> None:
        replies = await self.services.scripts.checkout_begin(
            cart_id=cart,
            event_ids=[self.event_id],
            order_id=self.orders.get(cart) or str(uuid.uuid4()),
            replace="",
            now_ms=now_ms(),
            deadline_ms=now_ms() + 60_000,
        )
        if replies[self.event_id].result == "ok":
            self.orders[cart] = replies[self.event_id].order_id

    async def _commit(self, cart: str) -> None:
        """The checkout's PostgreSQL transaction: guarded sold updates for the part's lines."""
        raw = await self.services.redis.hget(self.services.keys.event(self.event_id).carts, cart)
        part = msgspec.json.decode(raw) if raw else None
        if not part or part["s"] != "checkout" or part["o"] != self.orders[cart]:
            return
        pairs = []
        async with self.services.pool.acquire() as conn, conn.transaction():
            for tier_id, quantity in sorted(part["l"].items()):
                record = await conn.fetchrow(SELL, uuid.UUID(tier_id), quantity)
                # Refused means Redis granted holds PostgreSQL cannot sell: an oversell.
                assert record is not None, f"PostgreSQL refused {quantity} seats of {tier_id}"
                pairs.append((tier_id, record["sold_version"], quantity))
        self.committed[cart] = pairs

    async def _apply(self, cart: str) -> None:
        await self.services.scripts.checkout_apply(
            cart_id=cart, order_id=self.orders[cart], changes={self.event_id: self.committed[cart]}
        )
        del self.orders[cart], self.committed[cart]

    async def _abort(self, cart: str) -> None:
        await self.services.scripts.checkout_abort(
            cart_id=cart, order_id=self.orders[cart], event_ids=[self.event_id], now_ms=now_ms(), grace_ms=0
        )

    async def expire_an_order(self) -> None:
        """An unpaid order expires: one seat back in PostgreSQL; its install sometimes lost."""
        row = self.rng.choice(self.rows)
        record = await self.services.pool.fetchrow(SELL, row.id, -1)
        if record is not None and self.rng.random() < 0.7:
            await self.services.scripts.count_sold(
                event_id=self.event_id, changes=[(str(row.id), record["sold_version"], -1)]
            )

    async def reconcile(self) -> None:
        await reconcile_inventory(self.services)

    def slow_down_the_reconciler(self, monkeypatch) -> None:
        """Let the other steps run between the reconciler's PostgreSQL read and its script,
        so its read is often stale by the time the script runs."""
        script = self.services.scripts.reconcile

        async def late_reconcile(**kwargs):
            for _ in range(self.rng.randrange(8)):
                await asyncio.sleep(0)
            return await script(**kwargs)

        monkeypatch.setattr(self.services.scripts, "reconcile", late_reconcile)

    async def round(self) -> None:
        steps = [
            self.reserve,
            self.reserve,
            self.reserve,
            self.release,
            self.checkout,
            self.checkout,
            self.begin,
            self.commit,
            self.apply,
            self.abort,
            self.expire_an_order,
            self.reconcile,
            self.reconcile,
        ]
        await asyncio.gather(*(self.rng.choice(steps)() for _ in range(10)))

    async def check(self) -> None:
        parts = await self.services.redis.hgetall(self.services.keys.event(self.event_id).carts)
        held = {str(row.id): 0 for row in self.rows}
        uncommitted = dict(held)
        for cart, raw in parts.items():
            part = msgspec.json.decode(raw)
            for tier_id, quantity in part["l"].items():
                held[tier_id] += quantity
                if cart.decode() not in self.committed:
                    uncommitted[tier_id] += quantity
        inventory = await self.services.scripts.inventory(event_id=self.event_id, tier_ids=list(held))
        for row in self.rows:
            tier_id = str(row.id)
            sold = await self.services.pool.fetchval("SELECT quantity_sold FROM ticket_tiers WHERE id = $1", row.id)
            tier = inventory.tiers[tier_id]
            truth = TOTAL - sold - uncommitted[tier_id]
            assert tier.available <= truth, (tier, sold, uncommitted[tier_id])
            assert tier.held == held[tier_id]

    async def settle(self) -> None:
        """Finish every checkout, release every hold, reconcile: the state at rest."""
        for cart in list(self.committed):
            await self._apply(cart)
        for cart in list(self.orders):
            await self._abort(cart)
        for cart in self.carts:
            await self.services.scripts.clear_part(event_id=self.event_id, cart_id=cart)
        await reconcile_inventory(self.services)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_reconcile_racing_carts_and_checkouts_never_shows_more_seats_than_the_truth(services, seed, monkeypatch):
    first = await make_tier(services, total=TOTAL)
    second = await make_tier(services, event_id=str(first.event_id), total=TOTAL)
    market = Market(services, [first, second], seed)
    market.slow_down_the_reconciler(monkeypatch)

    for _ in range(ROUNDS):
        await market.round()
        await market.check()
    await market.settle()

    for row in (first, second):
        tier = (await services.scripts.inventory(event_id=market.event_id, tier_ids=[str(row.id)])).tiers[str(row.id)]
        sold = await services.pool.fetchval("SELECT quantity_sold FROM ticket_tiers WHERE id = $1", row.id)
        assert (tier.held, tier.sold) == (0, sold)
