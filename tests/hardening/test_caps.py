"""The caps a cart cannot pass, whatever it asks: quantity per line (MAX_QUANTITY_PER_LINE,
under the tier's own max_per_order), lines per event part (MAX_LINES_PER_CART), and that a
refused change holds nothing. Events per cart, body size and bad bodies are in
tests/cart/test_cart_api.py."""

from __future__ import annotations

import uuid

import pytest

from tests.api import ADMIN_HEADERS, put_tier
from tests.hardening.conftest import is_problem

pytestmark = pytest.mark.usefixtures("clean_state")


async def add(api, tier_id: str, quantity: int, token: str | None = None):
    api.cookies.clear()
    return await api.post(
        "/api/cart/items",
        json={"tier_id": tier_id, "quantity": quantity},
        headers={"X-Cart-Token": token} if token else {},
    )


async def held(api, tier_id: str) -> int:
    return (await api.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)).json()["inventory"]["held"]


async def test_max_quantity_per_line_caps_a_tier_that_allows_more(api_with):
    async with api_with(max_quantity_per_line=4) as api:
        tier = await put_tier(api, quantity_total=100, max_per_order=10)
        first = await add(api, tier["id"], 4)
        assert first.status_code == 201 and first.json()["items"][0]["max_per_order"] == 4
        token = first.headers["x-cart-token"]
        more = await add(api, tier["id"], 1, token)
        assert is_problem(more, 409, "limit-exceeded") and more.json()["limit"] == 4
        api.cookies.clear()
        put = await api.put(f"/api/cart/items/{tier['id']}", json={"quantity": 5}, headers={"X-Cart-Token": token})
        assert is_problem(put, 409, "limit-exceeded")
        assert is_problem(await add(api, tier["id"], 5), 409, "limit-exceeded")  # a new cart too
        assert await held(api, tier["id"]) == 4


async def test_a_tiers_lower_max_per_order_still_wins(api_with):
    async with api_with(max_quantity_per_line=50) as api:
        tier = await put_tier(api, max_per_order=2)
        response = await add(api, tier["id"], 3)
        assert is_problem(response, 409, "limit-exceeded") and response.json()["limit"] == 2


async def test_lines_per_part_are_capped_and_the_refused_line_holds_nothing(api_with):
    async with api_with(max_lines_per_cart=2) as api:
        event_id = str(uuid.uuid4())
        tiers = [await put_tier(api, event_id=event_id) for _ in range(3)]
        token = (await add(api, tiers[0]["id"], 1)).headers["x-cart-token"]
        assert (await add(api, tiers[1]["id"], 1, token)).status_code == 200
        refused = await add(api, tiers[2]["id"], 1, token)
        assert is_problem(refused, 409, "limit-exceeded") and refused.json()["what"] == "lines"
        assert await held(api, tiers[2]["id"]) == 0
        # Changing a line it already has is not a new line.
        assert (await add(api, tiers[1]["id"], 1, token)).status_code == 200
