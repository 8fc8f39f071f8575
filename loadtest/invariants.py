"""The invariant check after a run: nothing oversold, PostgreSQL and Redis agree, one
order per cart, and a flash sale sold exactly its seats.

``check`` is a pure function over plain numbers, so a test can hand it a broken state;
``observe`` gathers those numbers (admin API, optionally PostgreSQL) and judges nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from loadtest.catalog import AdminApi, Catalog
from loadtest.scenarios import Tally

FLASH_CHECK = "flash sale sold exactly its seats"


class TierCount(NamedTuple):
    tier_id: str
    total: int
    sold: int  # Redis's count, from the admin API
    held: int
    sold_db: int | None = None  # PostgreSQL's quantity_sold; None: not known
    tickets_valid: int | None = None  # live tickets in PostgreSQL
    bought: int | None = None  # seats in the orders the buyers were answered; None: ambiguous


class Observed(NamedTuple):
    tiers: list[TierCount]
    # (cart id, number of orders) for carts with more than one order; None: not looked at.
    carts_with_several_orders: list[tuple[str, int]] | None = None
    # Checkouts the buyers retried, and those answered with a different order.
    checkout_retries: int = 0
    second_orders_seen: int = 0
    # Flash sale: the seats that must end up sold (min(seats, buyers)); None: no flash.
    flash_expected_sold: int | None = None


class Check(NamedTuple):
    name: str
    status: str  # "pass", "fail" or "skip"
    detail: str = ""


class TierRule(NamedTuple):
    """An invariant of every tier: which tiers it can judge, and when one breaks it."""

    name: str
    judges: Callable[[TierCount], bool]
    breaks: Callable[[TierCount], bool]
    describe: Callable[[TierCount], str]
    unknown: str  # why it is skipped when it can judge no tier


TIER_RULES = (
    TierRule(
        "sold + held <= total (Redis)",
        lambda t: True,
        lambda t: t.sold + t.held > t.total or t.sold < 0 or t.held < 0,
        lambda t: f"sold {t.sold} + held {t.held} > total {t.total}",
        "no tiers",
    ),
    TierRule(
        "PostgreSQL sold = Redis sold",
        lambda t: t.sold_db is not None,
        lambda t: t.sold_db != t.sold,
        lambda t: f"PostgreSQL {t.sold_db}, Redis {t.sold}",
        "PostgreSQL's count not known",
    ),
    TierRule(
        "0 <= sold <= total (PostgreSQL)",
        lambda t: t.sold_db is not None,
        lambda t: not 0 <= (t.sold_db or 0) <= t.total,
        lambda t: f"sold {t.sold_db} of {t.total}",
        "PostgreSQL's count not known",
    ),
    TierRule(
        "live tickets = quantity_sold",
        lambda t: t.tickets_valid is not None,
        lambda t: t.tickets_valid != t.sold_db,
        lambda t: f"{t.tickets_valid} live tickets, quantity_sold {t.sold_db}",
        "needs --database-url",
    ),
    TierRule(
        "sold = seats in the orders buyers got",
        lambda t: t.bought is not None,
        lambda t: t.bought != _sold(t),
        lambda t: f"sold {_sold(t)}, buyers got {t.bought}",
        "some checkouts got no answer",
    ),
)


def _verdict(name: str, broken: list[str], known: bool, why_unknown: str) -> Check:
    if not known:
        return Check(name, "skip", why_unknown)
    if broken:
        shown = "; ".join(broken[:5]) + (f"; and {len(broken) - 5} more" if len(broken) > 5 else "")
        return Check(name, "fail", shown)
    return Check(name, "pass")


def check(observed: Observed) -> list[Check]:
    results = []
    for rule in TIER_RULES:
        judged = [t for t in observed.tiers if rule.judges(t)]
        broken = [f"{t.tier_id}: {rule.describe(t)}" for t in judged if rule.breaks(t)]
        results.append(_verdict(rule.name, broken, bool(judged), rule.unknown))
    several = observed.carts_with_several_orders
    broken = [f"cart {cart}: {n} orders" for cart, n in several or ()]
    if observed.second_orders_seen:
        broken.append(f"{observed.second_orders_seen} retried checkouts answered with a second order")
    known = several is not None or observed.checkout_retries > 0
    verdict = _verdict("no cart with two orders", broken, known, "needs --database-url")
    if verdict.status == "pass" and several is None:
        verdict = verdict._replace(
            detail=f"seen by buyers only: {observed.checkout_retries} retried checkouts kept their order"
        )
    results.append(verdict)
    if observed.flash_expected_sold is not None:
        tiers = observed.tiers
        sold = sum(_sold(t) for t in tiers)
        wrong = (
            []
            if sold == observed.flash_expected_sold
            else [f"sold {sold}, expected exactly {observed.flash_expected_sold}"]
        )
        results.append(_verdict(FLASH_CHECK, wrong, bool(tiers), "no tiers"))
    return results


def _sold(tier: TierCount) -> int:
    return tier.sold_db if tier.sold_db is not None else tier.sold


def passed(checks: list[Check]) -> bool:
    return all(c.status != "fail" for c in checks)


# --- gathering the numbers -------------------------------------------------------------


async def observe(
    admin: AdminApi,
    catalog: Catalog,
    tally: Tally,
    *,
    database_url: str | None = None,
    flash_expected_sold: int | None = None,
) -> Observed:
    """Read the state after a run; no judgement here."""
    db = await _read_database(database_url, catalog.tier_ids) if database_url else None
    ambiguous = tally.checkouts_unanswered > 0
    tiers = []
    for tier in catalog.tiers:
        data = await admin.tier_inventory(tier.id)
        inventory = data.get("inventory")
        if not isinstance(inventory, dict):
            raise ValueError(f"GET /api/admin/tiers/{tier.id} has no inventory object")
        sold_db = inventory.get("sold_db", data.get("sold_db"))
        tickets = None
        if db is not None:
            sold_db, tickets = db["sold"].get(tier.id), db["tickets"].get(tier.id, 0)
        tiers.append(
            TierCount(
                tier_id=tier.id,
                total=int(inventory["total"]),
                sold=int(inventory["sold"]),
                held=int(inventory["held"]),
                sold_db=int(sold_db) if sold_db is not None else None,
                tickets_valid=tickets,
                bought=None if ambiguous else tally.seats_bought.get(tier.id, 0),
            )
        )
    return Observed(
        tiers=tiers,
        carts_with_several_orders=db["several"] if db is not None else None,
        checkout_retries=tally.retries,
        second_orders_seen=tally.second_orders,
        flash_expected_sold=flash_expected_sold,
    )


async def _read_database(database_url: str, tier_ids: list[str]) -> dict:
    import asyncpg  # only when asked: the tool runs against remote deployments without it

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id::text AS id, quantity_total, quantity_sold FROM ticket_tiers WHERE id = ANY($1::uuid[])",
            tier_ids,
        )
        tickets = await conn.fetch(
            "SELECT tier_id::text AS tier_id, count(*) AS n FROM tickets"
            " WHERE tier_id = ANY($1::uuid[]) AND status = 'valid' GROUP BY tier_id",
            tier_ids,
        )
        several = await conn.fetch(
            "SELECT cart_id, count(*) AS n FROM orders GROUP BY cart_id HAVING count(*) > 1 LIMIT 20"
        )
    finally:
        await conn.close()
    return {
        "sold": {r["id"]: r["quantity_sold"] for r in rows},
        "tickets": {r["tier_id"]: r["n"] for r in tickets},
        "several": [(r["cart_id"], r["n"]) for r in several],
    }
