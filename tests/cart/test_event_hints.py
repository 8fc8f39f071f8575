"""A cart of several events: its other parts ride in the change's round trip (EventHints),
and a wrong guess never shows wrong data."""

from __future__ import annotations

import uuid

from service.cart.hints import EventHints
from service.redis.scripts import Scripts
from tests.api import put_tier
from tests.cart.test_cart_api import add, token_of


def test_hints_are_bounded_and_forget_the_oldest_first():
    hints = EventHints(size=10)
    for n in range(10):
        hints.remember(f"c{n}", [f"e{n}"])
    hints.remember("c10", ["e10"])
    assert hints.get("c0") == () and hints.get("c1") == ("e1",) and hints.get("c10") == ("e10",)
    hints.remember("c1", ["e1", "e2"])
    assert hints.get("c1") == ("e1", "e2")


async def test_a_change_to_a_cart_of_two_events_is_one_round_trip(api, monkeypatch):
    one, two = await put_tier(api), await put_tier(api)
    token = token_of(await add(api, one["id"], 1))
    await add(api, two["id"], 1, token)  # the first time the cart spans two events
    second_trips = []
    real = Scripts.views

    async def views(self, **kwargs):
        second_trips.append(kwargs["event_ids"])
        return await real(self, **kwargs)

    monkeypatch.setattr(Scripts, "views", views)
    cart = (await add(api, one["id"], 2, token)).json()
    assert second_trips == []
    assert {(item["tier_id"], item["quantity"]) for item in cart["items"]} == {(one["id"], 3), (two["id"], 1)}
    assert (await api.get("/api/cart", headers={"X-Cart-Token": token})).json() == cart
    assert second_trips == []


async def test_a_wrong_guess_still_shows_the_cart_as_it_is(api):
    one, two, three = await put_tier(api), await put_tier(api), await put_tier(api)
    token = token_of(await add(api, one["id"], 1))
    await add(api, two["id"], 1, token)
    hints = api.app.state.services.carts.hints
    cart_id = api.app.state.services.cart_tokens.verify(token)

    hints.remember(cart_id, [])  # forgotten (another worker served the cart before)
    cart = (await add(api, three["id"], 1, token)).json()
    assert {item["tier_id"] for item in cart["items"]} == {one["id"], two["id"], three["id"]}

    hints.remember(cart_id, [str(uuid.uuid4()), one["event_id"]])  # stale: names an event the cart never had
    viewed = (await api.get("/api/cart", headers={"X-Cart-Token": token})).json()
    assert viewed == cart
