"""What every job shares (one JSON summary line, the job metrics) and the two thin jobs
that call the order domain: stuck checkouts and unpaid orders."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from prometheus_client import REGISTRY

from service.logs import configure_logging
from service.metrics import ORDERS_EXPIRED
from service.orders.lifecycle import ExpiryBatch
from tests.api import api_client, put_tier
from tests.workers.conftest import counters, hold, make_tier, now_ms
from workers.expiry import expire_orders
from workers.recovery import recover_checkouts
from workers.summary import run_job
from workers.sweep import SweepStats


def sample(name: str, job: str) -> float:
    return REGISTRY.get_sample_value(name, {"job": job}) or 0.0


async def test_a_job_writes_one_json_summary_line_and_updates_its_metrics(capsys):
    configure_logging("INFO")
    runs_before = sample("tc_worker_job_duration_seconds_count", "test-ok")

    async def body():
        return SweepStats(events=2, calls=3, released=501)

    counts = await run_job("test-ok", body)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert {k: line[k] for k in ("msg", "level", "job", "ok", "events", "calls", "released", "unfinished")} == {
        "msg": "job done",
        "level": "info",
        "job": "test-ok",
        "ok": True,
        "events": 2,
        "calls": 3,
        "released": 501,
        "unfinished": 0,
    }
    assert line["duration_ms"] >= 0 and line["ts"].endswith("+00:00") and line["logger"] == "ticket_cart.worker"
    assert counts["released"] == 501
    assert sample("tc_worker_job_duration_seconds_count", "test-ok") == runs_before + 1
    assert sample("tc_worker_job_last_success_timestamp_seconds", "test-ok") > 0


async def test_a_failing_job_is_logged_counted_and_raised(capsys):
    configure_logging("INFO")
    failures_before = sample("tc_worker_job_failures_total", "test-fail")

    async def body():
        raise RuntimeError("PostgreSQL is down")

    with pytest.raises(RuntimeError):
        await run_job("test-fail", body)

    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (line["msg"], line["level"], line["ok"]) == ("job failed", "error", False)
    assert line["error"] == "RuntimeError: PostgreSQL is down" and "Traceback" in line["exc"]
    assert sample("tc_worker_job_failures_total", "test-fail") == failures_before + 1
    assert sample("tc_worker_job_last_success_timestamp_seconds", "test-fail") == 0


async def test_an_idle_run_writes_its_line_at_debug_and_still_counts(capsys):
    """deliver_webhooks runs every 5 s: its runs that did nothing stay out of an INFO log."""
    configure_logging("INFO")
    runs_before = sample("tc_worker_job_duration_seconds_count", "test-idle")

    async def body():
        return {"sent": 0}

    await run_job("test-idle", body, idle=lambda counts: counts["sent"] == 0)
    assert capsys.readouterr().out == ""
    configure_logging("DEBUG")
    try:
        await run_job("test-idle", body, idle=lambda counts: counts["sent"] == 0)
        (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    finally:
        configure_logging("INFO")
    assert (line["msg"], line["level"], line["sent"]) == ("job done", "debug", 0)
    assert sample("tc_worker_job_duration_seconds_count", "test-idle") == runs_before + 2
    assert sample("tc_worker_job_last_success_timestamp_seconds", "test-idle") > 0


class Fake:
    """Stands in for the services: only the object each job calls."""

    def __init__(self, **parts) -> None:
        self.__dict__.update(parts)


async def test_expiry_goes_on_after_each_full_page_and_counts_what_expired_and_failed():
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    keys = [(now, uuid.UUID(int=i)) for i in range(3)]
    batches = iter(
        [
            ExpiryBatch(picked=4, last=keys[0], expired=4),
            ExpiryBatch(picked=4, last=keys[1], expired=3, skipped=[uuid.UUID(int=9)]),
            ExpiryBatch(picked=1, last=keys[2], expired=1),
        ]
    )
    calls = []

    async def expire_unpaid(*, now, limit, after):
        calls.append((now, limit, after))
        return next(batches)

    expired_before = ORDERS_EXPIRED._value.get()

    stats = await expire_orders(Fake(lifecycle=Fake(expire_unpaid=expire_unpaid)), now=now, limit=4)

    assert (stats.expired, stats.failed, stats.batches) == (8, 1, 3)
    assert calls == [(now, 4, None), (now, 4, keys[0]), (now, 4, keys[1])]
    assert ORDERS_EXPIRED._value.get() - expired_before == 8


async def test_recovery_calls_again_while_a_batch_comes_back_full():
    dues = iter([2, 2, 0])

    async def recover(*, now_ms, limit):
        due = next(dues)
        return {"due": due, "applied": due}

    totals = await recover_checkouts(Fake(recovery=Fake(recover=recover)), now_ms=1, limit=2)

    assert totals == {"batches": 3, "due": 4, "applied": 4}


async def test_expiry_expires_a_real_unpaid_order_and_gives_its_seats_back(services, settings):
    async with api_client(settings) as client:
        tier = await put_tier(client, quantity_total=10)
        added = await client.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 2})
        assert added.status_code in (200, 201), added.text
        ordered = await client.post(
            "/api/orders", json={"email": "buyer@example.com"}, headers={"X-Cart-Token": added.headers["x-cart-token"]}
        )
        assert ordered.status_code == 201, ordered.text

    stats = await expire_orders(services, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))

    assert (stats.expired, stats.batches) == (1, 1)
    order = await services.pool.fetchrow(
        "SELECT o.status, t.quantity_sold FROM orders o JOIN ticket_tiers t ON t.id = $2::uuid WHERE o.id = $1::uuid",
        ordered.json()["id"],
        tier["id"],
    )
    assert (order["status"], order["quantity_sold"]) == ("expired", 0)
    inventory = await services.scripts.inventory(event_id=tier["event_id"], tier_ids=[tier["id"]])
    assert (inventory.tiers[tier["id"]].sold, inventory.tiers[tier["id"]].held) == (0, 0)


async def test_recovery_moves_a_stuck_checkout_with_no_order_back_to_open(services):
    row = await make_tier(services, total=10)
    cart = await hold(services, row, 2)
    event_id = str(row.event_id)
    await services.scripts.checkout_begin(
        cart_id=cart,
        event_ids=[event_id],
        order_id=str(uuid.uuid4()),
        replace="",
        now_ms=now_ms(),
        deadline_ms=now_ms() - 1,
    )

    totals = await recover_checkouts(services)

    assert (totals["due"], totals["aborted"], totals["applied"], totals["batches"]) == (1, 1, 0, 1)
    part = await services.scripts.view(event_id=event_id, cart_id=cart, now_ms=now_ms())
    assert part.state == "open" and part.lines[str(row.id)].quantity == 2
    assert (await counters(services, row)).held == 2
