"""The checkout's side of promo codes against real PostgreSQL: quote, and the guarded use
counts under real concurrency (many transactions at once on their own connections)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import msgspec
import pytest
import pytest_asyncio

from service.errors import InvalidPromo, PromoExhausted
from service.promo.dto import PromoDefinition, PromoQuote
from service.promo.service import PromoService, customer_key
from tests.promo.factories import EVENT_A, EVENT_B, line

pytestmark = pytest.mark.usefixtures("clean_state")

CONCURRENT_CONNECTIONS = 25


@pytest_asyncio.fixture(loop_scope="session")
async def promos(db_pool) -> PromoService:
    return PromoService(db_pool)


@pytest_asyncio.fixture(loop_scope="session")
async def wide_pool(settings):
    """Enough connections for transactions to really overlap."""
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=CONCURRENT_CONNECTIONS, max_size=CONCURRENT_CONNECTIONS
    )
    yield pool
    await pool.close()


async def define(promos: PromoService, code: str = "SAVE", **fields):
    body = {"code": code, "kind": "percent", "value": 10} | fields
    return (await promos.put(msgspec.convert(body, PromoDefinition, strict=False)))[0]


async def insert_order(conn: asyncpg.Connection) -> uuid.UUID:
    order_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO orders (id, number, cart_id, email, currency, subtotal, discount, total, payment_code,"
        " payment_due_at, event_ids) VALUES ($1, $2, 'cart', 'buyer@example.com', 'VND', 100000, 0, 100000,"
        " $3, now() + interval '30 minutes', ARRAY[]::uuid[])",
        order_id,
        f"TC-{order_id.hex[:12]}",
        f"PAY{order_id.hex[:12]}",
    )
    return order_id


async def checkout(
    pool: asyncpg.Pool, promos: PromoService, quote: PromoQuote, customer: str, start: asyncio.Event | None = None
) -> uuid.UUID | Exception:
    """One order transaction that redeems the code; the order id, or what refused it."""
    if start is not None:
        await start.wait()
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                order_id = await insert_order(conn)
                await promos.redeem(conn, quote, order_id, customer)
            return order_id
        except (PromoExhausted, InvalidPromo) as refused:
            return refused


async def counts(db_pool, code: str) -> tuple[int, int, int]:
    """(used, sum of customer uses, live redemptions)."""
    return (
        await db_pool.fetchval("SELECT used FROM promo_codes WHERE code = $1", code),
        await db_pool.fetchval("SELECT COALESCE(sum(uses), 0) FROM promo_customer_uses WHERE code = $1", code),
        await db_pool.fetchval("SELECT count(*) FROM promo_redemptions WHERE code = $1 AND released_at IS NULL", code),
    )


def quote_of(code: str, discount: int = 1_000) -> PromoQuote:
    return PromoQuote(code=code, discount=discount, line_discounts={"t": discount})


# -- quote -----------------------------------------------------------------------------------


async def test_a_quote_gives_the_discount_per_tier_for_the_lines_in_scope(promos):
    await define(promos, "HALF", value=50, event_id=EVENT_A)
    items = [line("a", 100_000), line("b", 40_001, event=EVENT_A), line("c", 90_000, event=EVENT_B)]
    quote = await promos.quote(" half ", items, customer_key(None, "Buyer@Example.com"))
    assert quote == PromoQuote(code="HALF", discount=70_001, line_discounts={"a": 50_000, "b": 20_001})


async def test_a_quote_checks_the_window_at_the_time_given(promos):
    await define(promos, "JUNE", starts_at="2030-06-01T00:00:00Z", ends_at="2030-07-01T00:00:00Z")
    items = [line("a", 100)]
    june = dt.datetime(2030, 6, 15, tzinfo=dt.UTC)
    assert (await promos.quote("JUNE", items, "user:1", now=june)).discount == 10
    with pytest.raises(InvalidPromo) as refused:
        await promos.quote("JUNE", items, "user:1", now=june + dt.timedelta(days=30))
    assert refused.value.extra["reason"] == "expired"


async def test_a_quote_refuses_a_used_up_code_and_a_customer_past_their_limit(promos, db_pool):
    await define(promos, "FEW", max_uses=5, max_uses_per_customer=2)
    await db_pool.execute("INSERT INTO promo_customer_uses VALUES ('FEW', 'user:1', 2)")
    with pytest.raises(PromoExhausted) as refused:
        await promos.quote("FEW", [line("a", 100)], "user:1")
    assert refused.value.extra == {"limit": "customer"}
    assert (await promos.quote("FEW", [line("a", 100)], "user:2")).discount == 10

    await db_pool.execute("UPDATE promo_codes SET used = 5 WHERE code = 'FEW'")
    with pytest.raises(PromoExhausted) as refused:
        await promos.quote("FEW", [line("a", 100)], "user:2")
    assert refused.value.extra == {"limit": "total"}


async def test_a_quote_of_an_unknown_code_is_not_found(promos):
    with pytest.raises(InvalidPromo) as refused:
        await promos.quote("NOPE", [line("a", 100)], "user:1")
    assert refused.value.extra["reason"] == "not-found"


def test_customer_keys_name_the_user_or_hash_the_email():
    assert customer_key("u-1", "a@b.c") == "user:u-1"
    key = customer_key(None, "  Buyer@Example.COM ")
    assert key == customer_key(None, "buyer@example.com") and key.startswith("email:")
    assert "buyer" not in key and len(key) == len("email:") + 64


# -- redeem under concurrency ----------------------------------------------------------------


async def test_a_code_limited_to_10_is_redeemed_exactly_10_times_by_100_concurrent_checkouts(
    promos, wide_pool, db_pool
):
    await define(promos, "TEN", max_uses=10)
    start = asyncio.Event()
    tasks = [asyncio.create_task(checkout(wide_pool, promos, quote_of("TEN"), f"user:{i}", start)) for i in range(100)]
    start.set()
    results = await asyncio.gather(*tasks)

    assert sum(isinstance(r, uuid.UUID) for r in results) == 10
    assert all(
        isinstance(r, PromoExhausted) and r.extra["limit"] == "total" for r in results if not isinstance(r, uuid.UUID)
    )
    assert await counts(db_pool, "TEN") == (10, 10, 10)


async def test_a_customer_limit_holds_under_concurrent_checkouts_by_that_customer(promos, wide_pool, db_pool):
    await define(promos, "TWICE", max_uses_per_customer=2)
    same_buyer = customer_key(None, "buyer@example.com")
    start = asyncio.Event()
    tasks = [asyncio.create_task(checkout(wide_pool, promos, quote_of("TWICE"), same_buyer, start)) for _ in range(30)]
    tasks += [asyncio.create_task(checkout(wide_pool, promos, quote_of("TWICE"), "user:other", start))]
    start.set()
    results = await asyncio.gather(*tasks)

    assert sum(isinstance(r, uuid.UUID) for r in results[:30]) == 2
    assert isinstance(results[30], uuid.UUID)
    assert all(r.extra["limit"] == "customer" for r in results if isinstance(r, PromoExhausted))
    assert await counts(db_pool, "TWICE") == (3, 3, 3)


async def test_a_refused_redeem_undoes_its_own_counts_even_if_the_caller_commits(promos, db_pool):
    await define(promos, "ONCE", max_uses_per_customer=1)
    async with db_pool.acquire() as conn:
        async with conn.transaction():
            await promos.redeem(conn, quote_of("ONCE"), await insert_order(conn), "user:1")
        async with conn.transaction():
            with pytest.raises(PromoExhausted):
                await promos.redeem(conn, quote_of("ONCE"), await insert_order(conn), "user:1")
    assert await counts(db_pool, "ONCE") == (1, 1, 1)


async def test_redeeming_a_code_switched_off_since_the_quote_is_refused(promos, db_pool):
    await define(promos, "OFF", active=False)
    result = await checkout(db_pool, promos, quote_of("OFF"), "user:1")
    assert isinstance(result, InvalidPromo) and result.extra["reason"] == "inactive"
    assert await counts(db_pool, "OFF") == (0, 0, 0)


async def test_redeem_needs_the_callers_transaction(promos, db_pool):
    await define(promos, "SAVE")
    async with db_pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            await promos.redeem(conn, quote_of("SAVE"), uuid.uuid4(), "user:1")


# -- release ---------------------------------------------------------------------------------


async def test_release_gives_the_use_back_once(promos, db_pool):
    await define(promos, "ONE", max_uses=1, max_uses_per_customer=1)
    order_id = await checkout(db_pool, promos, quote_of("ONE"), "user:1")
    assert isinstance(order_id, uuid.UUID)
    assert isinstance(await checkout(db_pool, promos, quote_of("ONE"), "user:2"), PromoExhausted)

    async with db_pool.acquire() as conn:
        assert await promos.release(conn, order_id) is True
        assert await promos.release(conn, order_id) is False
    assert await counts(db_pool, "ONE") == (0, 0, 0)
    assert await db_pool.fetchval("SELECT released_at IS NOT NULL FROM promo_redemptions WHERE order_id = $1", order_id)
    assert isinstance(await checkout(db_pool, promos, quote_of("ONE"), "user:1"), uuid.UUID)


async def test_concurrent_releases_of_one_order_give_back_one_use(promos, wide_pool, db_pool):
    await define(promos, "MANY")
    orders = [await checkout(db_pool, promos, quote_of("MANY"), "user:1") for _ in range(3)]

    async def release(order_id):
        async with wide_pool.acquire() as conn, conn.transaction():
            return await promos.release(conn, order_id)

    results = await asyncio.gather(*(release(orders[0]) for _ in range(20)))
    assert results.count(True) == 1
    assert await counts(db_pool, "MANY") == (2, 2, 2)


async def test_releasing_an_order_without_a_code_changes_nothing(promos, db_pool):
    async with db_pool.acquire() as conn:
        assert await promos.release(conn, uuid.uuid4()) is False


# -- retake (a late payment revives an expired order) ----------------------------------------


async def released_order(db_pool, promos, code: str, customer: str) -> uuid.UUID:
    order_id = await checkout(db_pool, promos, quote_of(code), customer)
    assert isinstance(order_id, uuid.UUID)
    async with db_pool.acquire() as conn:
        assert await promos.release(conn, order_id)
    return order_id


async def test_retake_counts_a_released_use_again_once(promos, db_pool):
    await define(promos, "BACK", max_uses=5)
    order_id = await released_order(db_pool, promos, "BACK", "user:1")
    async with db_pool.acquire() as conn, conn.transaction():
        assert await promos.retake(conn, order_id) is True
        assert await promos.retake(conn, order_id) is True  # still counted: nothing more
    assert await counts(db_pool, "BACK") == (1, 1, 1)
    async with db_pool.acquire() as conn:
        assert await promos.release(conn, order_id) is True  # and it can be released again
    assert await counts(db_pool, "BACK") == (0, 0, 0)


async def test_retake_counts_nothing_when_no_use_is_left(promos, db_pool):
    await define(promos, "LAST", max_uses=1, max_uses_per_customer=1)
    order_id = await released_order(db_pool, promos, "LAST", "user:1")
    assert isinstance(await checkout(db_pool, promos, quote_of("LAST"), "user:2"), uuid.UUID)
    async with db_pool.acquire() as conn, conn.transaction():
        assert await promos.retake(conn, order_id) is False
    assert await counts(db_pool, "LAST") == (1, 1, 1)

    await define(promos, "MINE", max_uses_per_customer=1)
    mine = await released_order(db_pool, promos, "MINE", "user:1")
    assert isinstance(await checkout(db_pool, promos, quote_of("MINE"), "user:1"), uuid.UUID)
    async with db_pool.acquire() as conn, conn.transaction():
        assert await promos.retake(conn, mine) is False
    assert await counts(db_pool, "MINE") == (1, 1, 1)


async def test_retake_of_an_order_without_a_code_is_false(promos, db_pool):
    async with db_pool.acquire() as conn, conn.transaction():
        assert await promos.retake(conn, uuid.uuid4()) is False
