"""A fault of ours is the one answer that is not 200: PostgreSQL unreachable, its COMMIT cut
or its answer lost or late, injected for real (tests/pg_fault_proxy.py in front of the
API's pool). The answer is 503, the transaction leaves nothing half-written (the payment's
row and the order's change commit together or not at all), and SePay's retry settles it:
a delivery that never committed pays on the retry, one whose commit's answer was lost is
found as a duplicate and changes nothing."""

from __future__ import annotations

import uuid

import pytest

from tests.api import api_client
from tests.hardening.conftest import is_problem
from tests.payments.conftest import buy, deliver, order_status, payments, sepay_settings, transaction

DB_TIMEOUT = 1.0

pytestmark = pytest.mark.usefixtures("clean_state")


@pytest.fixture
def faulty(settings, pg_fault_proxy):
    """The app's settings with its pool through the proxy, a short PostgreSQL timeout."""
    return sepay_settings(
        settings, database_url=pg_fault_proxy.url_via(settings.database_url), database_timeout_seconds=DB_TIMEOUT
    )


async def paid_count(db_pool, order: dict) -> int:
    return await db_pool.fetchval(
        "SELECT count(*) FROM payments WHERE status = 'paid' AND order_id = $1", uuid.UUID(order["id"])
    )


async def test_postgresql_unreachable_is_503_and_stores_nothing(faulty, pg_fault_proxy, db_pool):
    async with api_client(faulty) as api:
        order = await buy(api)
        body = transaction(order["payment"]["code"], order["total"])
        pg_fault_proxy.refuse_connections()
        pg_fault_proxy.cut_all()
        response = await deliver(api, body)
        assert is_problem(response, 503, "unavailable"), response.text
        assert response.headers["retry-after"]
        assert await payments(db_pool) == [] and await order_status(db_pool, order) == "pending_payment"
        pg_fault_proxy.refuse_connections(False)
        retried = await deliver(api, body)  # SePay's retry
        assert (retried.status_code, retried.json()) == (200, {"success": True})
    assert await order_status(db_pool, order) == "paid" and await paid_count(db_pool, order) == 1


async def test_a_commit_cut_before_postgresql_got_it_writes_nothing_and_the_retry_pays(faulty, pg_fault_proxy, db_pool):
    async with api_client(faulty) as api:
        order = await buy(api)
        body = transaction(order["payment"]["code"], order["total"])
        pg_fault_proxy.cut_before_commit(times=1)
        response = await deliver(api, body)
        assert is_problem(response, 503, "unavailable"), response.text
        # The payment's row and the order's change rolled back together.
        assert await payments(db_pool) == [] and await order_status(db_pool, order) == "pending_payment"
        retried = await deliver(api, body)
        assert (retried.status_code, retried.json()) == (200, {"success": True})
    assert await order_status(db_pool, order) == "paid" and await paid_count(db_pool, order) == 1


@pytest.mark.parametrize("fault", ["lost", "late"])
async def test_a_commit_whose_answer_is_lost_or_late_is_503_and_the_retry_finds_it_done(
    faulty, pg_fault_proxy, db_pool, fault
):
    async with api_client(faulty) as api:
        order = await buy(api)
        body = transaction(order["payment"]["code"], order["total"])
        seen = pg_fault_proxy.commits_seen
        if fault == "lost":
            pg_fault_proxy.drop_commit_answer(times=1)
        else:
            pg_fault_proxy.delay_commit_answer(DB_TIMEOUT * 3, times=1)
        response = await deliver(api, body)
        assert is_problem(response, 503, "unavailable"), response.text
        assert pg_fault_proxy.wait_for_commits(seen + 1, timeout=10)  # PostgreSQL got it
        # Committed whole: the payment and the order's change, both.
        assert await order_status(db_pool, order) == "paid" and await paid_count(db_pool, order) == 1
        retried = await deliver(api, body)
        assert (retried.status_code, retried.json()) == (200, {"success": True})
    assert len(await payments(db_pool)) == 1 and await paid_count(db_pool, order) == 1
