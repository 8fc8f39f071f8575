"""Which way the imports of ``service/events`` run (docs/architecture.md, "Layout"): every
domain area may record events, so the events area imports none of them, and its logic (all
but ``admin_handlers.py``, the HTTP edge) never imports the HTTP layer, Litestar or wiring."""

from __future__ import annotations

from tests.test_layout import AREA_ORDER, _violations


def test_the_events_area_imports_no_domain_area():
    assert _violations(("service/events",), (*AREA_ORDER, "service.payments")) == set()


def test_the_events_logic_never_imports_the_http_layer_nor_the_container():
    assert _violations(("service/events",), ("service.http", "litestar", "service.wiring"), skip_handlers=True) == set()


def test_the_checkout_and_the_lifecycle_record_through_the_outbox():
    """The rule is not empty: the orders area does import the events area."""
    assert ("service/orders/lifecycle.py", "service.events.outbox") in _violations(
        ("service/orders",), ("service.events",)
    )
