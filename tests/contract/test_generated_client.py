"""A client generated from the checked-in ``docs/openapi.json`` works: openapi-python-client
(``make venv`` installs it beside the project's virtualenv; it needs no network to generate)
writes a Python package into a temporary folder, and one whole purchase runs through it against a real server
(``tests/live_server.py``): the admin defines a tier and a promo code, a guest adds seats
and names the cart by the X-Cart-Token the answer gave, applies the code, checks out,
fetches the order with its access token, and the admin marks it paid."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from service.http.openapi import DOCUMENT_PATH
from tests.live_server import live_server

pytestmark = pytest.mark.usefixtures("clean_state")

PACKAGE = "ticket_cart_client"
# Installed by `make venv` in a virtualenv of its own (.venv/generator): it pins an older httpx
# than the service's. Missing, the test fails: it is part of what `make test` installs.
GENERATOR = Path(sys.executable).parent.parent / "generator" / "bin" / "openapi-python-client"
CONFIG = f"project_name_override: ticket-cart-client\npackage_name_override: {PACKAGE}\npost_hooks: []\n"


@pytest.fixture
def client_package(tmp_path: Path) -> Iterator[ModuleType]:
    """The generated package, imported; forgotten afterwards."""
    assert GENERATOR.exists(), f"{GENERATOR} is missing: make venv installs it"
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    command = [GENERATOR, "generate", "--path", DOCUMENT_PATH, "--meta", "none", "--config", config]
    result = subprocess.run(
        [str(part) for part in [*command, "--output-path", tmp_path / PACKAGE]],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The generator says what it could not turn into code; the document must have nothing of the kind.
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_a_purchase_through_the_generated_client(settings, client_package):
    models = importlib.import_module(f"{PACKAGE}.models")
    # One module per operation, named after its operationId, in a folder per tag.
    for operation in ("admin.put_tier", "admin.put_promo_code", "admin.mark_paid", "cart.add_item"):
        importlib.import_module(f"{PACKAGE}.api.{operation}")
    for operation in ("cart.apply_promo", "cart.get_cart", "orders.create_order", "orders.get_order"):
        importlib.import_module(f"{PACKAGE}.api.{operation}")
    admin_api, cart_api, orders_api = (sys.modules[f"{PACKAGE}.api.{tag}"] for tag in ("admin", "cart", "orders"))
    Client = client_package.Client  # the generated class

    with live_server(settings) as server:
        admin = Client(base_url=server.base_url, headers={"X-Admin-Key": settings.admin_api_key})
        tier_id, event_id = uuid.uuid4(), uuid.uuid4()
        tier = admin_api.put_tier.sync_detailed(
            tier_id=tier_id,
            client=admin,
            body=models.TierDefinition(
                event_id=event_id,
                name="General admission",
                price=500_000,
                currency="VND",
                quantity_total=100,
                max_per_order=6,
            ),
        )
        assert tier.status_code == 201, tier.content
        assert tier.parsed.id == tier_id and tier.parsed.event_id == event_id
        promo = admin_api.put_promo_code.sync_detailed(
            client=admin,
            body=models.PromoDefinition(code="CLIENT10", kind=models.PromoDefinitionKind.PERCENT, value=10),
        )
        assert promo.status_code == 201, promo.content

        # A guest without a cart: the add makes one and names it in X-Cart-Token.
        added = cart_api.add_item.sync_detailed(
            client=Client(base_url=server.base_url), body=models.AddItem(tier_id=tier_id, quantity=2)
        )
        assert added.status_code == 201, added.content
        assert added.parsed.item_count == 2 and added.parsed.status == models.CartViewStatus.OPEN
        # From here on the cart is named by the header alone (a new client: no cookie).
        buyer = Client(base_url=server.base_url, headers={"X-Cart-Token": added.headers["x-cart-token"]})

        with_promo = cart_api.apply_promo.sync(client=buyer, body=models.ApplyPromo(code=" client10 "))
        assert isinstance(with_promo, models.CartView), with_promo
        assert (with_promo.promo_code, with_promo.subtotal, with_promo.discount, with_promo.total) == (
            "CLIENT10",
            1_000_000,
            100_000,
            900_000,
        )

        checkout = orders_api.create_order.sync_detailed(
            client=buyer,
            body=models.CheckoutRequest(email="buyer@example.com", name="Lan Nguyen"),
            idempotency_key="client-purchase-1",
        )
        assert checkout.status_code == 201, checkout.content
        order = checkout.parsed
        assert order.status == models.OrderViewStatus.PENDING_PAYMENT
        assert (order.total, order.discount, order.promo_code) == (900_000, 100_000, "CLIENT10")
        assert len(order.tickets) == 2 and order.payment.amount == 900_000
        assert isinstance(order.access_token, str)
        emptied = cart_api.get_cart.sync(client=buyer)
        assert emptied.status == models.CartViewStatus.EMPTY

        # Anyone holding the order's access token reads it; nothing else names the buyer.
        fetched = orders_api.get_order.sync(
            order_id=order.id, client=Client(base_url=server.base_url), x_order_token=order.access_token
        )
        assert isinstance(fetched, models.OrderView), fetched
        assert (fetched.id, fetched.number, fetched.total) == (order.id, order.number, 900_000)
        assert [ticket.status for ticket in fetched.tickets] == [models.TicketStatus.VALID] * 2

        paid = admin_api.mark_paid.sync(order_id=order.id, client=admin)
        assert paid.status == models.OrderViewStatus.PAID
