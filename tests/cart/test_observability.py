"""Request ids, JSON log lines and the cart's counters."""

from __future__ import annotations

import json
import logging

from service.logs import REQUEST_ID, JsonFormatter
from tests.api import put_tier


async def test_a_request_id_is_echoed_or_made(api):
    given = await api.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await api.get("/health/live")
    assert len(made.headers["x-request-id"]) == 32


async def test_cart_operations_are_counted_by_outcome(api):
    tier = await put_tier(api, quantity_total=1)
    await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
    api.cookies.clear()
    await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
    metrics = (await api.get("/metrics")).text
    assert 'tc_cart_operations_total{op="add",result="ok"}' in metrics
    assert 'tc_cart_operations_total{op="add",result="sold-out"}' in metrics
    assert "tc_sold_out_refusals_total" in metrics
    assert 'route="/api/cart/items"' in metrics


def test_log_lines_are_json_with_the_request_id():
    record = logging.LogRecord("ticket_cart.x", logging.WARNING, __file__, 1, "held %d seats", (3,), None)
    token = REQUEST_ID.set("req-9")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line | {"level": "warning", "logger": "ticket_cart.x", "msg": "held 3 seats", "request_id": "req-9"} == line
