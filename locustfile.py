"""ticket-cart's load scenarios for Locust: the same buyer flows as ``python -m loadtest``.

For teams that already use Locust. Locust is not a project dependency; install it beside
the project (``pip install locust``) and run from the repository root, one class a run:

    LOADTEST_ADMIN_KEY=<admin key> LOADTEST_SERVICE_KEY=<trusted service key> \\
        locust -f locustfile.py -H http://127.0.0.1:8000 --headless -u 64 -r 64 -t 30s MixBuyer

Classes: CeilingUser (GET /health/live, needs no key), AddBuyer, FlashBuyer, CheckoutBuyer,
MixBuyer, ReadBuyer. Each user runs buyers back to back (a closed loop, like --mode closed);
Locust's failures table groups by problem ``code``; codes a scenario expects (sold-out in a
flash sale) count as successes. Environment: LOADTEST_ADMIN_KEY (creates the run's tiers),
LOADTEST_SERVICE_KEY (sent as X-Service-Key: the server skips rate limits), LOADTEST_SEATS
(flash seats, default 100), LOADTEST_RUN_ID (give every process of a distributed or
--processes run the same one, so they share one catalogue and one flash tier).

What Locust does not give: open-loop latency free of coordinated omission, and the
invariant check after the run. ``python -m loadtest run`` does both; see docs/performance.md.
"""

from __future__ import annotations

import itertools
import os
import random
import secrets

import requests
from gevent.lock import Semaphore
from locust import FastHttpUser, events, task

from loadtest.catalog import Catalog, plan_catalog
from loadtest.client import Response
from loadtest.scenarios import SCENARIOS, FlowContext, Tally
from loadtest.stats import problem_code

RUN_ID = os.environ.get("LOADTEST_RUN_ID") or secrets.token_hex(4).upper()
SEATS = int(os.environ.get("LOADTEST_SEATS", "100"))
ADMIN_KEY = os.environ.get("LOADTEST_ADMIN_KEY", "")
SERVICE_HEADERS = (
    {"X-Service-Key": os.environ["LOADTEST_SERVICE_KEY"]} if os.environ.get("LOADTEST_SERVICE_KEY") else {}
)

TALLY = Tally()  # what this process's buyers were answered
_catalogs: dict[str, Catalog] = {}
_catalog_lock = Semaphore()
_buyer_numbers = itertools.count()


def catalog_for(kind: str, base_url: str) -> Catalog:
    """The run's catalogue of ``kind``, created through the admin API once per process."""
    with _catalog_lock:
        if kind not in _catalogs:
            catalog = plan_catalog(kind, seats=SEATS, run_id=RUN_ID)
            if catalog.tiers:
                _create(catalog, base_url)
            _catalogs[kind] = catalog
    return _catalogs[kind]


def _create(catalog: Catalog, base_url: str) -> None:
    if not ADMIN_KEY:
        raise RuntimeError("set LOADTEST_ADMIN_KEY: this scenario creates its own tiers")
    headers = {"X-Admin-Key": ADMIN_KEY, **SERVICE_HEADERS}
    for tier in catalog.tiers:
        body = {
            "event_id": tier.event_id,
            "name": tier.name,
            "price": tier.price,
            "currency": "VND",
            "quantity_total": tier.total,
            "max_per_order": tier.max_per_order,
        }
        requests.put(f"{base_url}/api/admin/tiers/{tier.id}", json=body, headers=headers, timeout=30).raise_for_status()
    if catalog.promo_codes:
        unlimited, limited = catalog.promo_codes
        for body in (
            {"code": unlimited, "kind": "percent", "value": 10},
            {
                "code": limited,
                "kind": "fixed",
                "value": 20_000,
                "currency": "VND",
                "max_uses": catalog.limited_promo_uses,
            },
        ):
            answer = requests.post(f"{base_url}/api/admin/promo-codes", json=body, headers=headers, timeout=30)
            if answer.status_code not in (200, 201, 409):  # 409: another process made it first
                answer.raise_for_status()


class _FlowUser(FastHttpUser):
    """Runs one scenario's buyers, one after another, with the cart token each one gets."""

    abstract = True
    scenario = "health"

    def on_start(self) -> None:
        self.rng = random.Random()
        self.catalog = catalog_for(SCENARIOS[self.scenario].catalog_kind, self.host.rstrip("/"))

    @task
    def one_buyer(self) -> None:
        scenario = SCENARIOS[self.scenario]
        ctx = FlowContext(self.rng, self.catalog, TALLY, f"{os.getpid()}-{next(_buyer_numbers)}")
        flow = scenario.flow(ctx)
        token: str | None = None
        call = next(flow, None)
        while call is not None:
            headers = {**SERVICE_HEADERS, **(call.headers or {})}
            if token:
                headers["X-Cart-Token"] = token
            with self.client.request(
                call.method, call.path, name=call.op, json=call.body, headers=headers, catch_response=True
            ) as answer:
                got = None
                if answer.status_code:  # 0: no answer (Locust has already marked it failed)
                    token = answer.headers.get("x-cart-token") or token
                    got = Response(answer.status_code, {}, answer.content or b"")
                    if answer.status_code >= 400:
                        code = problem_code(got)
                        if code in scenario.expected_codes:
                            answer.success()
                        else:
                            answer.failure(code)
            try:
                call = flow.send(got)
            except StopIteration:
                call = None


class CeilingUser(_FlowUser):
    scenario = "health"


class AddBuyer(_FlowUser):
    scenario = "add"


class FlashBuyer(_FlowUser):
    scenario = "flash"


class CheckoutBuyer(_FlowUser):
    scenario = "checkout"


class MixBuyer(_FlowUser):
    scenario = "mix"


class ReadBuyer(_FlowUser):
    scenario = "read"


@events.test_stop.add_listener
def _report_tally(**_: object) -> None:
    print(
        f"loadtest run {RUN_ID}: this process's buyers got {TALLY.orders} orders for"
        f" {sum(TALLY.seats_bought.values())} seats; {TALLY.second_orders} retried checkouts"
        " answered with a second order"
    )
