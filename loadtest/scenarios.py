"""What a virtual buyer does, one scenario per flow.

A flow is a generator: it yields the next ``Call`` and is sent the ``Response`` (or None
when no answer came). The engine owns connections, timing and the cart token; flows own
only the buyer's choices and what the invariant check must learn from the answers.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Generator
from typing import NamedTuple

from loadtest.catalog import Catalog, Tier
from loadtest.client import Response


class Call(NamedTuple):
    op: str  # the row in the report: add, update, view, checkout, ...
    method: str
    path: str
    body: object = None
    headers: dict[str, str] | None = None


Flow = Generator[Call, "Response | None", None]


class Tally:
    """What the buyers of one process saw: the client's side of the invariant check."""

    def __init__(self) -> None:
        self.seats_bought: Counter[str] = Counter()  # tier id -> seats in answered orders
        self.orders = 0
        self.checkouts_unanswered = 0  # no answer: it may or may not have committed
        self.retries = 0
        self.second_orders = 0  # a retried checkout answered with another order

    def merge(self, other: Tally) -> None:
        self.seats_bought.update(other.seats_bought)
        self.orders += other.orders
        self.checkouts_unanswered += other.checkouts_unanswered
        self.retries += other.retries
        self.second_orders += other.second_orders

    def to_dict(self) -> dict[str, object]:
        return {
            "seats_bought": dict(self.seats_bought),
            "orders": self.orders,
            "checkouts_unanswered": self.checkouts_unanswered,
            "retries": self.retries,
            "second_orders": self.second_orders,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Tally:
        tally = cls()
        tally.seats_bought.update(data.get("seats_bought", {}))  # type: ignore[arg-type]
        for name in ("orders", "checkouts_unanswered", "retries", "second_orders"):
            setattr(tally, name, int(data.get(name, 0)))  # type: ignore[call-overload]
        return tally


class FlowContext:
    __slots__ = ("buyer", "catalog", "rng", "tally")

    def __init__(self, rng: random.Random, catalog: Catalog, tally: Tally, buyer: str) -> None:
        self.rng = rng
        self.catalog = catalog
        self.tally = tally
        self.buyer = buyer  # unique within the run

    @property
    def email(self) -> str:
        return f"lt-{self.catalog.run_id.lower()}-{self.buyer}@example.com"

    def tier(self) -> Tier:
        return self.rng.choice(self.catalog.tiers)


SERVICE = "service"
STACK_REFERENCE = "stack-reference"


class Scenario(NamedTuple):
    name: str
    description: str
    catalog_kind: str  # see catalog.plan_catalog
    flow: Callable[[FlowContext], Flow]
    # Ends when its buyers are done rather than when the time is up.
    finite: bool = False
    # Problem codes that are the scenario working as meant, not failures.
    expected_codes: frozenset[str] = frozenset()
    # The server whose routes the flow speaks: the service, or the stack reference
    # (loadtest/stack_reference.py) that make bench serves beside it.
    server: str = SERVICE


def ok(answer: Response | None) -> bool:
    return answer is not None and 200 <= answer.status < 300


# --- building blocks -------------------------------------------------------------------


def add(tier: Tier, quantity: int = 1) -> Call:
    return Call("add", "POST", "/api/cart/items", {"tier_id": tier.id, "quantity": quantity})


def view_cart() -> Call:
    return Call("view", "GET", "/api/cart")


def availability(tier: Tier) -> Call:
    return Call("availability", "GET", f"/api/tiers/{tier.id}/availability")


def checkout(
    ctx: FlowContext, idempotency_key: str | None = None, *, retry: bool = False
) -> Generator[Call, Response | None, str | None]:
    """Check out; tally the seats of an answered order (not again on a retry); its id."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    body = {"email": ctx.email, "name": "Load Test"}
    answer = yield Call("checkout", "POST", "/api/orders", body, headers)
    if answer is None:
        ctx.tally.checkouts_unanswered += 1
        return None
    order = answer.json() if ok(answer) else None
    if not isinstance(order, dict):
        return None
    if retry:
        return str(order.get("id"))
    ctx.tally.orders += 1
    for item in order.get("items") or ():
        if isinstance(item, dict) and "tier_id" in item:
            ctx.tally.seats_bought[str(item["tier_id"])] += int(item.get("quantity", 0))
    return str(order.get("id"))


# --- flows -----------------------------------------------------------------------------


def health_flow(ctx: FlowContext) -> Flow:
    yield Call("live", "GET", "/health/live")


def ping_flow(ctx: FlowContext) -> Flow:
    yield Call("ping", "GET", "/ping")


# An add's body, byte for byte in size: both requests carry the same bytes on the wire,
# though the reference route reads none of it.
_EVAL_BODY = {"tier_id": "00000000-0000-0000-0000-000000000000", "quantity": 1}


def eval_flow(ctx: FlowContext) -> Flow:
    yield Call("eval", "POST", "/eval", _EVAL_BODY)


def add_flow(ctx: FlowContext) -> Flow:
    """Fill a cart with single seats of random tiers, then start a new cart."""
    for _ in range(5):
        yield add(ctx.tier())


def flash_flow(ctx: FlowContext) -> Flow:
    """Race for one seat of the flash tier; buy it if the hold was granted."""
    answer = yield add(ctx.catalog.tiers[0])
    if ok(answer):
        yield from checkout(ctx)


def checkout_flow(ctx: FlowContext) -> Flow:
    """Add one seat and check out at once: half the calls are checkouts."""
    answer = yield add(ctx.tier())
    if ok(answer):
        yield from checkout(ctx)


def read_flow(ctx: FlowContext) -> Flow:
    """Hold one seat, then look at the cart and at availability over and over."""
    tier = ctx.tier()
    yield add(tier)
    for i in range(20):
        yield view_cart() if i % 2 == 0 else availability(ctx.tier())


def mix_flow(ctx: FlowContext) -> Flow:
    """Browse and buy: look, add, change, drop, try codes; a third check out."""
    rng, catalog = ctx.rng, ctx.catalog
    first, second = ctx.tier(), ctx.tier()
    for _ in range(rng.randint(1, 2)):
        yield availability(ctx.tier())
    answer = yield add(first, rng.randint(1, 2))
    if not ok(answer):
        return
    if second.id != first.id:
        yield add(second)
    yield view_cart()
    if rng.random() < 0.5:
        yield Call("update", "PUT", f"/api/cart/items/{first.id}", {"quantity": rng.randint(1, 4)})
    if second.id != first.id and rng.random() < 0.3:
        yield Call("remove", "DELETE", f"/api/cart/items/{second.id}")
    if catalog.promo_codes and rng.random() < 0.3:
        code = catalog.invalid_promo if rng.random() < 0.2 else rng.choice(catalog.promo_codes)
        yield Call("promo", "POST", "/api/cart/promo", {"code": code})
    yield view_cart()
    roll = rng.random()
    if roll < 0.35:
        key = f"{catalog.run_id}-{ctx.buyer}"
        order_id = yield from checkout(ctx, key)
        if order_id is not None and rng.random() < 0.1:
            # The same checkout again (a client retry): it must not make a second order.
            ctx.tally.retries += 1
            again = yield from checkout(ctx, key, retry=True)
            if again is not None and again != order_id:
                ctx.tally.second_orders += 1
    elif roll < 0.7:
        yield Call("empty", "DELETE", "/api/cart")
    # else: abandoned; the holds expire on their own.


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("health", "GET /health/live: the ceiling", "none", health_flow),
        Scenario("add", "add-to-cart only: 5 single seats per cart", "roomy", add_flow),
        Scenario(
            "flash",
            "flash sale: every buyer races for one seat of one small tier",
            "flash",
            flash_flow,
            finite=True,
            expected_codes=frozenset({"sold-out"}),
        ),
        Scenario("checkout", "add one seat, check out", "roomy", checkout_flow),
        Scenario("checkout-spread", "add one seat of one of many tiers, check out", "spread", checkout_flow),
        Scenario(
            "checkout-hot",
            "every buyer adds one seat of the same tier and checks out",
            "flash",
            flash_flow,
            finite=True,
        ),
        Scenario(
            "mix",
            "browse and buy across events, tiers and promo codes",
            "promo",
            mix_flow,
            # Deliberately tried: an unknown code, a code with few uses.
            expected_codes=frozenset({"invalid-promo", "promo-exhausted"}),
        ),
        Scenario("read", "hot read: cart views and availability", "roomy", read_flow),
        Scenario("ping", "stack reference: GET /ping, a bare route", "none", ping_flow, server=STACK_REFERENCE),
        Scenario(
            "eval",
            "stack reference: POST /eval, one auto-pipelined EVALSHA",
            "none",
            eval_flow,
            server=STACK_REFERENCE,
        ),
    )
}
