"""Every SePay delivery lands where it should, is answered 200 {"success": true}, and is
never lost: an exact payment pays its order (late payments by the late-payment rule),
anything else waits for review with a reason (and a payment.needs_review event), and a
duplicate changes nothing. Real PostgreSQL and Redis, through the HTTP route."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tests.payments.conftest import (
    buy,
    deliver,
    order_status,
    payments,
    review_events,
    transaction,
    vietnam_time,
)

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)  # every test's order is due by then


async def delivered(client, body) -> None:
    response = await deliver(client, body)
    assert (response.status_code, response.json()) == (200, {"success": True}), response.text


async def only_payment(db_pool) -> dict:
    (payment,) = await payments(db_pool)
    return payment


async def inventory(client, tier_id: str) -> dict:
    return (await client.get(f"/api/admin/tiers/{tier_id}", headers={"X-Admin-Key": "test-admin-key"})).json()[
        "inventory"
    ]


async def test_the_exact_amount_pays_the_order_once(client, db_pool):
    order = await buy(client, price=500_000)
    body = transaction(order["payment"]["code"], 500_000)
    await delivered(client, body)
    assert await order_status(db_pool, order) == "paid"
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["reason"], str(payment["order_id"])) == ("paid", None, order["id"])
    assert payment["payment_code"] == order["payment"]["code"] and payment["amount"] == 500_000
    paid_at = await db_pool.fetchval("SELECT paid_at FROM orders WHERE id = $1", uuid.UUID(order["id"]))
    await delivered(client, body)  # SePay's retry: answered, nothing changes
    assert len(await payments(db_pool)) == 1
    assert await db_pool.fetchval("SELECT paid_at FROM orders WHERE id = $1", uuid.UUID(order["id"])) == paid_at
    assert await review_events(db_pool) == []
    paid = await db_pool.fetchval(
        "SELECT count(*) FROM order_events WHERE kind = 'order.paid' AND order_id = $1", uuid.UUID(order["id"])
    )
    assert paid == 1  # OrderLifecycle.pay's order.paid, in the payment's transaction


@pytest.mark.parametrize("amount, reason", [(499_999, "short"), (500_001, "over"), (1_000_000, "over")])
async def test_a_wrong_amount_waits_for_review_and_the_order_waits_for_its_payment(client, db_pool, amount, reason):
    order = await buy(client, price=500_000)
    await delivered(client, transaction(order["payment"]["code"], amount))
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["reason"], str(payment["order_id"])) == ("needs_review", reason, order["id"])
    assert await order_status(db_pool, order) == "pending_payment"
    (event,) = await review_events(db_pool)
    assert str(event["order_id"]) == order["id"] and event["reason"] == reason and event["amount"] == amount
    assert event["payment_id"] == str(payment["id"]) and event["order"]["status"] == "pending_payment"


async def test_a_cancelled_order_is_not_paid(client, db_pool):
    order = await buy(client)
    cancelled = await client.post(f"/api/admin/orders/{order['id']}/cancel", headers={"X-Admin-Key": "test-admin-key"})
    assert cancelled.status_code == 200
    await delivered(client, transaction(order["payment"]["code"], order["total"]))
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["reason"]) == ("needs_review", "order-cancelled")
    assert await order_status(db_pool, order) == "cancelled"


async def test_a_second_transfer_for_a_paid_order_waits_for_review(client, db_pool):
    order = await buy(client)
    marked = await client.post(f"/api/admin/orders/{order['id']}/mark-paid", headers={"X-Admin-Key": "test-admin-key"})
    assert marked.status_code == 200
    await delivered(client, transaction(order["payment"]["code"], order["total"]))
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["reason"]) == ("needs_review", "already-paid")


async def test_a_code_no_order_has_or_no_code_at_all_waits_for_review_without_an_order(client, db_pool):
    order = await buy(client)
    code = order["payment"]["code"]
    unknown = "TC" + code[2:-1][::-1]
    from service.orders.codes import _check_symbol  # a well-formed code no order has

    unknown = unknown + _check_symbol(unknown[2:])
    assert unknown != code
    await delivered(client, transaction(None, 500_000, content=f"thanh toan {unknown}"))
    await delivered(client, transaction(None, 500_000, content="chuyen tien ve nha"))
    found = [(p["status"], p["reason"], p["order_id"], p["payment_code"]) for p in await payments(db_pool)]
    assert found == [("needs_review", "unknown-code", None, unknown), ("needs_review", "no-code", None, None)]
    assert [(e["order_id"], e["reason"], e["order"]) for e in await review_events(db_pool)] == [
        (None, "unknown-code", None),
        (None, "no-code", None),
    ]
    assert await order_status(db_pool, order) == "pending_payment"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: f"CT DEN:0123 {c} chuyen tien",
        lambda c: f"MBVCB.3278907687.{c.lower()}.CT tu 0123",
        lambda c: f"IBFT {c[:2]}-{c[2:6]}-{c[6:]} thanh toan",
        lambda c: f"{c[:5]} {c[5:]}",
    ],
    ids=["wrapped", "lower case with dots", "dashes", "a space inside"],
)
async def test_a_code_only_in_the_content_as_banks_mangle_it_still_pays(client, db_pool, mangle):
    order = await buy(client)
    await delivered(client, transaction(None, order["total"], content=mangle(order["payment"]["code"])))
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["payment_code"]) == ("paid", order["payment"]["code"])
    assert await order_status(db_pool, order) == "paid"


async def test_sepays_code_wins_and_a_code_that_is_not_ours_falls_back_to_the_content(client, db_pool):
    order = await buy(client)
    await delivered(client, transaction("DH12345", order["total"], content=f"DH12345 {order['payment']['code']}"))
    assert (await only_payment(db_pool))["status"] == "paid"


async def test_another_account_waits_for_review_and_pays_nothing(client, db_pool):
    order = await buy(client)
    await delivered(client, transaction(order["payment"]["code"], order["total"], accountNumber="999888777"))
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["reason"], str(payment["order_id"])) == (
        "needs_review",
        "wrong-account",
        order["id"],
    )
    assert await order_status(db_pool, order) == "pending_payment"


async def test_our_virtual_sub_account_is_our_account(client, db_pool):
    order = await buy(client)
    body = transaction(order["payment"]["code"], order["total"], accountNumber="555", subAccount="0123499999")
    await delivered(client, body)
    assert (await only_payment(db_pool))["status"] == "paid"


async def test_outgoing_transfers_and_the_test_ping_are_ignored(client, db_pool):
    order = await buy(client)
    await delivered(client, transaction(order["payment"]["code"], order["total"], transferType="out"))
    await delivered(client, transaction(None, 10_000, content="Giao dịch thử nghiệm SePay"))
    found = [(p["status"], p["reason"]) for p in await payments(db_pool)]
    assert found == [("ignored", "outgoing"), ("ignored", "test-ping")]
    assert await order_status(db_pool, order) == "pending_payment"
    assert await review_events(db_pool) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'{"id": 777001, "transferType": "in", "transferAmount": "500000"}',
        b'{"id": 777002, "transferType": "in", "transferAmount": 1, "content": "a\\u0000b"}',
        b'{"id": 99999999999999999999999, "transferType": "in", "transferAmount": 1}',
        b"[1, 2]",
        b"\xff\xfe\x00",
    ],
    ids=["not json", "amount as text", "NUL", "id too large", "an array", "not UTF-8"],
)
async def test_a_body_we_cannot_use_is_kept_raw_for_review_and_answered_200(client, db_pool, body):
    await delivered(client, body)
    row = await db_pool.fetchrow("SELECT status, reason, raw_body, payload, sepay_id FROM payments")
    assert (row["status"], row["reason"], bytes(row["raw_body"])) == ("needs_review", "unreadable", body)
    await delivered(client, body)  # again: kept again unless it names its SePay id
    expected = 1 if row["sepay_id"] is not None else 2
    assert await db_pool.fetchval("SELECT count(*) FROM payments") == expected


async def test_unknown_fields_are_accepted_and_kept(client, db_pool):
    order = await buy(client)
    await delivered(client, transaction(order["payment"]["code"], order["total"], newField={"a": 1}))
    payload = await db_pool.fetchval("SELECT payload->'newField'->>'a' FROM payments")
    assert payload == "1" and await order_status(db_pool, order) == "paid"


# -- late payments ---------------------------------------------------------------------------


async def set_due(db_pool, order: dict, due: dt.datetime) -> None:
    await db_pool.execute("UPDATE orders SET payment_due_at = $2 WHERE id = $1", uuid.UUID(order["id"]), due)


async def test_a_transfer_dated_before_due_and_grace_pays_an_order_the_worker_expired(client, db_pool, services):
    order = await buy(client, total=3, quantity=3)
    due = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    await set_due(db_pool, order, due)
    assert (await services.lifecycle.expire_unpaid(now=dt.datetime.now(dt.UTC))).expired == 1
    assert (await inventory(client, order["tier_id"]))["available"] == 3
    sent = due + dt.timedelta(seconds=100)  # after due, within the 120 s grace
    await delivered(client, transaction(order["payment"]["code"], order["total"], transactionDate=vietnam_time(sent)))
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["reason"]) == ("paid", None)
    assert '"revived": true' in payment["detail"].replace(" ", "").replace(":", ": ")
    assert await order_status(db_pool, order) == "paid"
    assert (await inventory(client, order["tier_id"]))["available"] == 0  # Redis learnt of the seats taken again


async def test_a_transfer_dated_after_due_still_pays_an_order_still_pending_marked_late(client, db_pool):
    order = await buy(client)
    await set_due(db_pool, order, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    await delivered(client, transaction(order["payment"]["code"], order["total"]))
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["reason"]) == ("paid", "late")
    assert await order_status(db_pool, order) == "paid"


async def test_a_late_transfer_revives_an_expired_order_whose_seats_are_free(client, db_pool, services):
    order = await buy(client, total=3, quantity=2)
    await services.lifecycle.expire_unpaid(now=LATER)
    await delivered(client, transaction(order["payment"]["code"], order["total"], transactionDate=vietnam_time(LATER)))
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["reason"]) == ("paid", "late")
    assert await order_status(db_pool, order) == "paid"


@pytest.mark.parametrize("late", [False, True])
async def test_an_expired_order_whose_seats_were_sold_waits_for_review_and_changes_nothing(
    client, db_pool, services, late
):
    order = await buy(client, total=3, quantity=3)
    await services.lifecycle.expire_unpaid(now=LATER)
    other = await client.post("/api/cart/items", json={"tier_id": order["tier_id"], "quantity": 2})
    client.cookies.clear()
    bought = await client.post(
        "/api/orders", json={"email": "b@example.com"}, headers={"X-Cart-Token": other.headers["x-cart-token"]}
    )
    assert bought.status_code == 201
    when = vietnam_time(LATER) if late else vietnam_time()
    await delivered(client, transaction(order["payment"]["code"], order["total"], transactionDate=when))
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["reason"]) == ("needs_review", "late-seats-gone" if late else "seats-gone")
    assert await order_status(db_pool, order) == "expired"
    sold = await db_pool.fetchval("SELECT quantity_sold FROM ticket_tiers WHERE id = $1", uuid.UUID(order["tier_id"]))
    assert sold == 2
    (event,) = await review_events(db_pool)
    assert event["order"]["status"] == "expired"
    paid = await db_pool.fetchval(
        "SELECT count(*) FROM order_events WHERE kind = 'order.paid' AND order_id = $1", uuid.UUID(order["id"])
    )
    assert paid == 0  # the refused payment rolled back to its savepoint, its event with it


async def test_a_text_naming_two_orders_pays_neither(client, db_pool):
    first, second = await buy(client), await buy(client)
    text = f"{first['payment']['code']} {second['payment']['code']}"
    await delivered(client, transaction(None, first["total"], content=text))
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["reason"], payment["order_id"]) == ("needs_review", "several-codes", None)
    assert await order_status(db_pool, first) == await order_status(db_pool, second) == "pending_payment"


async def test_an_order_in_another_currency_is_not_paid_in_vnd(client, db_pool):
    order = await buy(client, price=1_000, currency="USD")
    await delivered(client, transaction(order["payment"]["code"], order["total"]))
    payment = await only_payment(db_pool)
    assert (payment["status"], payment["reason"]) == ("needs_review", "wrong-currency")
    assert await order_status(db_pool, order) == "pending_payment"
