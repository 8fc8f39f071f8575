"""The admin's view of payments: GET /api/admin/payments (status filter, pages by cursor)
and GET /api/admin/payments/{id} (the body and headers as received), behind X-Admin-Key."""

from __future__ import annotations

import uuid

from tests.api import ADMIN_HEADERS
from tests.hardening.conftest import is_problem
from tests.payments.conftest import buy, deliver, transaction


async def test_the_list_shows_each_payment_with_its_reason_order_and_amount(client):
    order = await buy(client)
    await deliver(client, transaction(order["payment"]["code"], order["total"] - 1))
    await deliver(client, transaction(order["payment"]["code"], order["total"]))
    await deliver(client, transaction(None, 5, transferType="out"))
    listed = await client.get("/api/admin/payments", headers=ADMIN_HEADERS)
    assert listed.status_code == 200
    page = listed.json()
    assert page["next_cursor"] is None
    found = [(p["status"], p["reason"], p["order_id"], p["amount"]) for p in page["payments"]]
    assert found == [  # newest first
        ("ignored", "outgoing", None, 5),
        ("paid", None, order["id"], order["total"]),
        ("needs_review", "short", order["id"], order["total"] - 1),
    ]
    review = (await client.get("/api/admin/payments?status=needs_review", headers=ADMIN_HEADERS)).json()
    assert [p["reason"] for p in review["payments"]] == ["short"]
    assert review["payments"][0]["detail"]["order_total"] == order["total"]


async def test_pages_follow_the_cursor_and_a_made_up_cursor_is_422(client):
    for n in range(5):
        await deliver(client, transaction(None, n + 1))
    seen, cursor = [], None
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = (await client.get(f"/api/admin/payments{query}", headers=ADMIN_HEADERS)).json()
        seen += [p["amount"] for p in page["payments"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [5, 4, 3, 2, 1]
    crafted = await client.get("/api/admin/payments?cursor=AAAA", headers=ADMIN_HEADERS)
    assert is_problem(crafted, 422, "validation-error") and crafted.json()["field"] == "cursor"
    assert is_problem(
        await client.get("/api/admin/payments?status=lost", headers=ADMIN_HEADERS), 422, "validation-error"
    )


async def test_one_payment_shows_what_was_received_and_never_the_api_key(client):
    body = b'{"id": 4242, "transferType": "in", "transferAmount": "not a number", "extra": [1]}'
    await deliver(client, body)
    (listed,) = (await client.get("/api/admin/payments", headers=ADMIN_HEADERS)).json()["payments"]
    one = await client.get(f"/api/admin/payments/{listed['id']}", headers=ADMIN_HEADERS)
    assert one.status_code == 200
    shown = one.json()
    assert (shown["status"], shown["reason"], shown["sepay_id"]) == ("needs_review", "unreadable", 4242)
    assert shown["body"] == body.decode() and shown["payload"]["extra"] == [1]
    assert "authorization" not in shown["headers"] and shown["headers"]["content-type"] == "application/json"
    assert "transferAmount" in shown["detail"]["problem"]
    missing = await client.get(f"/api/admin/payments/{uuid.uuid4()}", headers=ADMIN_HEADERS)
    assert is_problem(missing, 404, "not-found")
    assert is_problem(await client.get("/api/admin/payments/42", headers=ADMIN_HEADERS), 422, "validation-error")


async def test_without_the_admin_key_nothing_is_shown(client):
    for path in ("/api/admin/payments", f"/api/admin/payments/{uuid.uuid4()}"):
        assert is_problem(await client.get(path), 401, "unauthorized")
        assert is_problem(await client.get(path, headers={"X-Admin-Key": "guess"}), 401, "unauthorized")


async def test_one_orders_transfers(client):
    first, second = await buy(client), await buy(client)
    await deliver(client, transaction(first["payment"]["code"], 1))
    await deliver(client, transaction(second["payment"]["code"], second["total"]))
    await deliver(client, transaction(first["payment"]["code"], first["total"]))
    page = (await client.get(f"/api/admin/payments?order_id={first['id']}", headers=ADMIN_HEADERS)).json()
    assert [(p["status"], p["reason"]) for p in page["payments"]] == [("paid", None), ("needs_review", "short")]
    assert {p["order_id"] for p in page["payments"]} == {first["id"]}
    refused = await client.get("/api/admin/payments?order_id=42", headers=ADMIN_HEADERS)
    assert is_problem(refused, 422, "validation-error") and refused.json()["field"] == "order_id"


async def test_deliveries_and_refusals_are_counted(client):
    from prometheus_client import REGISTRY

    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        count("tc_sepay_deliveries_total", status="needs_review", reason="short"),
        count("tc_sepay_deliveries_total", status="duplicate", reason=""),
        count("tc_sepay_auth_failures_total", mode="apikey"),
    )
    order = await buy(client)
    body = transaction(order["payment"]["code"], order["total"] - 1)
    await deliver(client, body)
    await deliver(client, body)
    await deliver(client, body, {"Authorization": "Apikey guess"})
    after = (
        count("tc_sepay_deliveries_total", status="needs_review", reason="short"),
        count("tc_sepay_deliveries_total", status="duplicate", reason=""),
        count("tc_sepay_auth_failures_total", mode="apikey"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]
