"""A checkout meeting PostgreSQL trouble: unreachable, failing inside the transaction,
committing but not answering, or disagreeing with Redis about the seats left. The buyer
keeps their holds, nothing is half written, and the retry makes exactly one order.

Here the faults are simulated inside the process; tests/orders/test_commit_faults.py injects
them for real, through a proxy between the API and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pytest

from service.clock import now_ms
from service.errors import PromoExhausted
from service.orders import settlement as settlement_module, store, writer as writer_module
from service.orders.outcome import Outcome
from service.promo.dto import PromoQuote
from tests.api import ADMIN_HEADERS, put_tier

BUYER = {"email": "buyer@example.com"}


async def add(client, tier_id: str, quantity: int, headers: dict | None = None) -> dict[str, str]:
    response = await client.post(
        "/api/cart/items", json={"tier_id": tier_id, "quantity": quantity}, headers=headers or {}
    )
    assert response.status_code in (200, 201), response.text
    client.cookies.clear()
    return headers or {"X-Cart-Token": response.headers["x-cart-token"]}


async def inventory(client, tier_id: str) -> dict:
    return (await client.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)).json()["inventory"]


async def rows(db_pool) -> tuple[int, int, int]:
    return (
        await db_pool.fetchval("SELECT count(*) FROM orders"),
        await db_pool.fetchval("SELECT count(*) FROM order_items"),
        await db_pool.fetchval("SELECT count(*) FROM tickets"),
    )


def in_app(client, function, *args):
    """Run ``function(*args)`` on the app's own event loop (the test client's portal)."""
    return client.blocking_portal.call(function, *args)


def named_order(client, cart_headers: dict, event_id: str) -> str:
    """The order id the cart's part names (the id a retry will reuse)."""
    services = client.app.state.services
    cart_id = services.cart_tokens.verify(cart_headers["X-Cart-Token"])

    async def view():
        return await services.scripts.view(event_id=event_id, cart_id=cart_id, now_ms=now_ms())

    return in_app(client, view).order_id


async def unreachable_pool() -> asyncpg.Pool:
    return await asyncpg.create_pool("postgresql://postgres@127.0.0.1:9/none", min_size=0, max_size=1)


def lose_the_commit_answer(monkeypatch, *, looked_up: Outcome | None = None) -> None:
    """The next checkout commits, then its PostgreSQL answer is lost (a timeout after the
    COMMIT was sent). ``looked_up``: what the look-up that follows answers once, instead of
    asking PostgreSQL (UNKNOWN: PostgreSQL unreachable by then)."""
    real_transaction = writer_module.OrderWriter.transaction

    async def commit_then_time_out(self, *args, **kwargs):
        await real_transaction(self, *args, **kwargs)
        raise writer_module.CommitUnanswered("the COMMIT's answer never came")

    monkeypatch.setattr(writer_module.OrderWriter, "transaction", commit_then_time_out)
    if looked_up is not None:
        real_outcome = settlement_module.order_outcome
        answers = [looked_up]

        async def outcome_once(*args, **kwargs):
            return answers.pop() if answers else await real_outcome(*args, **kwargs)

        monkeypatch.setattr(settlement_module, "order_outcome", outcome_once)


@contextmanager
def postgres_down(client) -> Iterator[None]:
    """The checkout's pool points at a port where nothing listens: every connection is refused."""
    services = client.app.state.services
    writer = services.checkouts.writer
    users = (services.checkouts, writer, writer.group, services.settlement)  # a checkout's ways to PostgreSQL
    real_pool = services.pool
    down = in_app(client, unreachable_pool)
    for user in users:
        user.pool = down
    try:
        yield
    finally:
        in_app(client, down.close)
        for user in users:
            user.pool = real_pool


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "unavailable" and response.headers["retry-after"]


async def test_postgres_unreachable_answers_503_keeps_the_holds_and_the_retry_succeeds(client, db_pool):
    tier = await put_tier(client, quantity_total=10)
    cart = await add(client, tier["id"], 3)
    with postgres_down(client):
        refused = await client.post("/api/orders", json=BUYER, headers=cart)

    assert_unavailable(refused)
    assert await rows(db_pool) == (0, 0, 0)
    cart_view = (await client.get("/api/cart", headers=cart)).json()
    assert (cart_view["status"], cart_view["item_count"]) == ("open", 3)
    assert await inventory(client, tier["id"]) == {"total": 10, "sold": 0, "held": 3, "available": 7, "sold_db": 0}
    assert named_order(client, cart, tier["event_id"]) == ""  # no transaction of it can commit

    retried = await client.post("/api/orders", json=BUYER, headers=cart)

    assert retried.status_code == 201
    assert await inventory(client, tier["id"]) == {"total": 10, "sold": 3, "held": 0, "available": 7, "sold_db": 3}


async def test_a_failure_inside_the_transaction_rolls_everything_back(client, db_pool, monkeypatch):
    """With a promo use to count, the order is a transaction: the connection lost after the
    order's statement and before the COMMIT leaves nothing written."""
    tier = await put_tier(client, quantity_total=10)
    cart = await add(client, tier["id"], 2)
    await create_promo(client, "LOST10", max_uses=5)
    assert (await client.post("/api/cart/promo", json={"code": "LOST10"}, headers=cart)).status_code == 200
    real_insert = store.insert_order

    async def insert_then_lose_the_connection(conn, order, **kwargs):
        assert conn.is_in_transaction()
        await real_insert(conn, order, **kwargs)
        raise asyncpg.exceptions.ConnectionDoesNotExistError("connection lost mid-transaction")

    monkeypatch.setattr(store, "insert_order", insert_then_lose_the_connection)
    refused = await client.post("/api/orders", json=BUYER, headers=cart)
    monkeypatch.undo()

    assert_unavailable(refused)
    assert await rows(db_pool) == (0, 0, 0)
    assert await db_pool.fetchval("SELECT quantity_sold FROM ticket_tiers WHERE id = $1", uuid.UUID(tier["id"])) == 0
    assert await db_pool.fetchval("SELECT used FROM promo_codes WHERE code = 'LOST10'") == 0
    assert (await inventory(client, tier["id"]))["held"] == 2
    assert (await client.post("/api/orders", json=BUYER, headers=cart)).status_code == 201


async def test_without_a_promo_the_order_is_one_statement_whose_lost_answer_is_looked_up(client, db_pool, monkeypatch):
    """No promo use to count: the order's one statement commits on its own (no transaction,
    so a hot tier's row lock never waits on this process), and an answer lost after it is an
    unknown outcome, looked up: the order it made is the answer, made once."""
    tier = await put_tier(client, quantity_total=10)
    cart = await add(client, tier["id"], 2)
    real_insert = store.insert_order

    async def insert_then_lose_the_connection(conn, order, **kwargs):
        assert not conn.is_in_transaction()
        await real_insert(conn, order, **kwargs)
        raise asyncpg.exceptions.ConnectionDoesNotExistError("the statement's answer was lost")

    monkeypatch.setattr(store, "insert_order", insert_then_lose_the_connection)
    answered = await client.post("/api/orders", json=BUYER, headers=cart)
    monkeypatch.undo()

    assert answered.status_code == 201, answered.text
    assert answered.json()["id"] == str(await db_pool.fetchval("SELECT id FROM orders"))
    assert await rows(db_pool) == (1, 1, 2)
    assert await inventory(client, tier["id"]) == {"total": 10, "sold": 2, "held": 0, "available": 8, "sold_db": 2}


async def test_a_commit_whose_answer_is_lost_is_looked_up_and_answered_as_made(client, db_pool, monkeypatch):
    tier = await put_tier(client, quantity_total=10)
    cart = await add(client, tier["id"], 3)
    lose_the_commit_answer(monkeypatch)
    answered = await client.post("/api/orders", json=BUYER, headers=cart)
    monkeypatch.undo()

    assert answered.status_code == 201, answered.text
    assert answered.json()["id"] == str(await db_pool.fetchval("SELECT id FROM orders"))
    assert answered.json()["access_token"]
    assert await rows(db_pool) == (1, 1, 3)
    assert await inventory(client, tier["id"]) == {"total": 10, "sold": 3, "held": 0, "available": 7, "sold_db": 3}
    assert (await client.get("/api/cart", headers=cart)).json()["item_count"] == 0


async def test_a_lost_commit_postgres_cannot_confirm_keeps_the_part_in_checkout_for_the_retry(
    client, db_pool, monkeypatch
):
    tier = await put_tier(client, quantity_total=10)
    cart = await add(client, tier["id"], 3)
    lose_the_commit_answer(monkeypatch, looked_up=Outcome.UNKNOWN)
    pending = await client.post("/api/orders", json=BUYER, headers=cart)
    monkeypatch.undo()

    assert (pending.status_code, pending.json()["code"]) == (503, "checkout-pending"), pending.text
    assert pending.headers["retry-after"]
    assert (await client.get("/api/cart", headers=cart)).json()["status"] == "checkout"
    # Committed in PostgreSQL, not yet known to Redis: the seats are held once, never freed.
    assert await inventory(client, tier["id"]) == {"total": 10, "sold": 0, "held": 3, "available": 7, "sold_db": 3}

    retried = await client.post("/api/orders", json=BUYER, headers=cart)

    assert retried.status_code == 200
    assert retried.json()["id"] == str(await db_pool.fetchval("SELECT id FROM orders"))
    assert await rows(db_pool) == (1, 1, 3)
    assert await inventory(client, tier["id"]) == {"total": 10, "sold": 3, "held": 0, "available": 7, "sold_db": 3}


async def test_seats_postgres_no_longer_has_are_refused_sold_out_and_redis_learns_the_truth(client, db_pool):
    tier = await put_tier(client, quantity_total=5)
    cart = await add(client, tier["id"], 2)
    # Another writer sold the last seats in PostgreSQL and Redis never heard of it.
    await db_pool.execute(
        "UPDATE ticket_tiers SET quantity_sold = 4, sold_version = sold_version + 1 WHERE id = $1",
        uuid.UUID(tier["id"]),
    )

    response = await client.post("/api/orders", json=BUYER, headers=cart)

    assert (response.status_code, response.json()["code"], response.json()["available"]) == (409, "sold-out", 1)
    assert await rows(db_pool) == (0, 0, 0)
    assert await inventory(client, tier["id"]) == {"total": 5, "sold": 4, "held": 2, "available": 0, "sold_db": 4}
    assert (await client.get("/api/cart", headers=cart)).json()["status"] == "open"


async def create_promo(client, code: str, **fields) -> None:
    response = await client.post(
        "/api/admin/promo-codes", headers=ADMIN_HEADERS, json={"code": code, "kind": "percent", "value": 10, **fields}
    )
    assert response.status_code in (200, 201), response.text


async def test_a_promo_code_on_the_cart_discounts_the_order_and_counts_one_use(client, db_pool):
    tier = await put_tier(client, price=200_000)
    cart = await add(client, tier["id"], 2)
    await create_promo(client, "TENOFF", max_uses=5)
    assert (await client.post("/api/cart/promo", json={"code": "TENOFF"}, headers=cart)).status_code == 200

    response = await client.post("/api/orders", json=BUYER, headers=cart)

    order = response.json()
    assert response.status_code == 201, response.text
    assert (order["subtotal"], order["discount"], order["total"], order["promo_code"]) == (
        400_000,
        40_000,
        360_000,
        "TENOFF",
    )
    assert order["payment"]["amount"] == 360_000
    assert sum(item["discount"] for item in order["items"]) == 40_000
    assert await db_pool.fetchval("SELECT used FROM promo_codes WHERE code = 'TENOFF'") == 1
    assert await db_pool.fetchval("SELECT discount FROM promo_redemptions") == 40_000


async def test_a_promo_used_up_at_checkout_is_refused_with_the_holds_kept(client, db_pool):
    tier = await put_tier(client)
    await create_promo(client, "ONCE", max_uses=1)
    first, second = await add(client, tier["id"], 1), await add(client, tier["id"], 1)
    for cart in (first, second):
        assert (await client.post("/api/cart/promo", json={"code": "ONCE"}, headers=cart)).status_code == 200

    used = await client.post("/api/orders", json=BUYER, headers=first)
    refused = await client.post("/api/orders", json=BUYER, headers=second)

    assert used.status_code == 201
    assert (refused.status_code, refused.json()["code"]) == (409, "promo-exhausted")
    assert (await rows(db_pool))[0] == 1
    assert (await inventory(client, tier["id"]))["held"] == 1


async def test_a_promo_exhausted_inside_the_transaction_rolls_the_order_back(client, db_pool, monkeypatch):
    """The quote saw a use left; a concurrent checkout took it before the guarded update."""
    tier = await put_tier(client)
    await create_promo(client, "RACE", max_uses=1)
    cart = await add(client, tier["id"], 1)
    await client.post("/api/cart/promo", json={"code": "RACE"}, headers=cart)
    await db_pool.execute("UPDATE promo_codes SET used = 1 WHERE code = 'RACE'")

    async def stale_quote(self, code, items, customer_key, now=None):
        return PromoQuote(code=code, discount=1000, line_discounts={items[0].tier_id: 1000})

    monkeypatch.setattr(type(client.app.state.services.promos), "quote", stale_quote)
    response = await client.post("/api/orders", json=BUYER, headers=cart)

    assert (response.status_code, response.json()["code"]) == (409, PromoExhausted.code)
    assert await rows(db_pool) == (0, 0, 0)
    assert await db_pool.fetchval("SELECT quantity_sold FROM ticket_tiers") == 0
    assert (await client.get("/api/cart", headers=cart)).json()["status"] == "open"


@pytest.mark.parametrize("clash", ["orders_payment_code_key", "tickets_code_key"])
async def test_a_clash_on_a_random_code_draws_again(client, db_pool, monkeypatch, clash):
    tier = await put_tier(client)
    cart = await add(client, tier["id"], 1)
    real_insert = store.insert_order
    calls = []

    async def clash_once(conn, order, **kwargs):
        calls.append(order.payment_code)
        if len(calls) == 1:
            error = asyncpg.UniqueViolationError("duplicate key value")
            error.constraint_name = clash
            raise error
        return await real_insert(conn, order, **kwargs)

    monkeypatch.setattr(store, "insert_order", clash_once)
    response = await client.post("/api/orders", json=BUYER, headers=cart)

    assert response.status_code == 201
    assert len(calls) == 2 and calls[0] != calls[1]
    assert (await rows(db_pool))[0] == 1


async def test_a_part_added_after_a_failed_try_is_checked_out_with_the_rest(client, db_pool):
    first = await put_tier(client)
    cart = await add(client, first["id"], 1)
    with postgres_down(client):
        assert_unavailable(await client.post("/api/orders", json=BUYER, headers=cart))
    second = await put_tier(client)  # another event
    await add(client, second["id"], 2, cart)

    response = await client.post("/api/orders", json=BUYER, headers=cart)

    assert response.status_code == 201
    assert {(i["tier_id"], i["quantity"]) for i in response.json()["items"]} == {(first["id"], 1), (second["id"], 2)}
    assert await rows(db_pool) == (1, 2, 3)


async def test_seats_added_after_a_pending_commit_stay_in_the_cart_for_a_next_order(client, db_pool, monkeypatch):
    first = await put_tier(client)
    cart = await add(client, first["id"], 1)
    lose_the_commit_answer(monkeypatch, looked_up=Outcome.UNKNOWN)
    assert (await client.post("/api/orders", json=BUYER, headers=cart)).json()["code"] == "checkout-pending"
    monkeypatch.undo()
    second = await put_tier(client)
    await add(client, second["id"], 2, cart)

    committed = await client.post("/api/orders", json=BUYER, headers=cart)
    cart_after = (await client.get("/api/cart", headers=cart)).json()
    next_order = await client.post("/api/orders", json=BUYER, headers=cart)

    # The retry answers the order that did commit, with what it held then...
    assert committed.status_code == 200
    assert [(i["tier_id"], i["quantity"]) for i in committed.json()["items"]] == [(first["id"], 1)]
    # ...the seats added since stay held in the cart, and make an order of their own.
    assert [(i["tier_id"], i["quantity"]) for i in cart_after["items"]] == [(second["id"], 2)]
    assert next_order.status_code == 201 and next_order.json()["id"] != committed.json()["id"]
    assert [(i["tier_id"], i["quantity"]) for i in next_order.json()["items"]] == [(second["id"], 2)]
    assert await inventory(client, second["id"]) == {"total": 100, "sold": 2, "held": 0, "available": 98, "sold_db": 2}


async def test_an_unanswered_order_survives_a_checkout_that_could_not_read_it(client, db_pool, monkeypatch):
    """The cart remembers an order nobody heard of; the next checkout fails to read it
    (PostgreSQL down): the note stays, and the try after that answers the order rather
    than making a second one."""
    tier = await put_tier(client, quantity_total=10)
    cart = await add(client, tier["id"], 2)
    lose_the_commit_answer(monkeypatch, looked_up=Outcome.UNKNOWN)
    assert (await client.post("/api/orders", json=BUYER, headers=cart)).json()["code"] == "checkout-pending"
    monkeypatch.undo()
    assert (await client.delete("/api/cart", headers=cart)).status_code == 200  # settles: committed
    await add(client, tier["id"], 1, cart)

    with postgres_down(client):
        assert_unavailable(await client.post("/api/orders", json=BUYER, headers=cart))
    answered = await client.post("/api/orders", json=BUYER, headers=cart)

    assert answered.status_code == 200, answered.text
    assert [i["quantity"] for i in answered.json()["items"]] == [2]
    assert await rows(db_pool) == (1, 1, 2)
    assert (await client.get("/api/cart", headers=cart)).json()["item_count"] == 1


async def test_data_postgresql_refuses_is_a_422_with_the_holds_kept_never_an_outage(client, db_pool, monkeypatch):
    """Bad data is refused at the edge; should some still reach PostgreSQL, the checkout
    answers 422 (clients do not retry it), not 503 with Retry-After."""
    tier = await put_tier(client, quantity_total=10)
    cart = await add(client, tier["id"], 2)

    async def refuse_the_data(conn, order, **kwargs):
        raise asyncpg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00')

    monkeypatch.setattr(store, "insert_order", refuse_the_data)
    refused = await client.post("/api/orders", json=BUYER, headers=cart)

    assert (refused.status_code, refused.json()["code"]) == (422, "validation-error"), refused.text
    assert "retry-after" not in refused.headers
    assert await rows(db_pool) == (0, 0, 0)
    assert (await client.get("/api/cart", headers=cart)).json()["status"] == "open"
