"""The worker's delivery of order events to a receiver (a real HTTP server in the test):
signed per Standard Webhooks, in order per order, at least once, retried while the receiver
is down, stopped by 410 Gone, replayed on demand, never sent twice by two workers at once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import msgspec
import pytest

from service.events.delivery import RetryPolicy, WebhookSender
from service.events.dto import NewEndpoint
from service.events.outbox import ORDER_CREATED, record_event
from service.events.payloads import DATA, EVENT_KINDS
from service.events.signing import verify, webhook_headers
from tests.api import ADMIN_HEADERS, put_tier
from tests.events.conftest import drain, due_now
from tests.events.receiver import Received
from tests.events.test_outbox import an_order

BUYER = {"email": "buyer@example.com"}


async def buy(client, tier_id: str) -> dict:
    added = await client.post("/api/cart/items", json={"tier_id": tier_id, "quantity": 1})
    client.cookies.clear()
    response = await client.post("/api/orders", json=BUYER, headers={"X-Cart-Token": added.headers["x-cart-token"]})
    assert response.status_code == 201, response.text
    return response.json()


async def admin(client, order: dict, action: str) -> None:
    response = await client.post(f"/api/admin/orders/{order['id']}/{action}", headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text


def opened(received: Received, secret: str) -> tuple[str, str, dict]:
    """(webhook-id, type, data) of a request, once its signature is verified."""
    verify(secret, received.headers, received.body, now=int(time.time()))
    assert received.headers["content-type"] == "application/json"
    envelope = msgspec.json.decode(received.body)
    data = msgspec.json.decode(msgspec.json.encode(envelope["data"]), type=DATA[envelope["type"]])
    return received.headers["webhook-id"], envelope["type"], msgspec.to_builtins(data)


async def statuses(db_pool) -> dict[str, list[str]]:
    rows = await db_pool.fetch(
        "SELECT ev.kind, d.status FROM webhook_deliveries d JOIN order_events ev ON ev.id = d.event_id ORDER BY ev.seq"
    )
    found: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        found[r["status"]].append(r["kind"])
    return dict(found)


async def test_a_receiver_down_then_back_gets_every_event_signed_and_in_order_per_order(
    client, db_pool, endpoints, sender, receiver
):
    endpoint = await endpoints.register(NewEndpoint(url=receiver.url, events=list(EVENT_KINDS)))
    tier = await put_tier(client)
    orders = [await buy(client, tier["id"]) for _ in range(2)]
    for order in orders:
        await admin(client, order, "mark-paid")
        await admin(client, order, "cancel")

    refused = await sender.run()  # nothing listens: connection refused

    assert (refused.fanned_out, refused.kinds) == (6, {"order.created": 2, "order.paid": 2, "order.cancelled": 2})
    # Only each order's first event was tried: the later ones wait for it.
    assert (refused.retry, refused.delivered) == (2, 0)
    assert await db_pool.fetchval("SELECT count(*) FROM webhook_deliveries WHERE attempts > 0") == 2

    await receiver.start()
    receiver.answer(503)
    await due_now(db_pool)
    unavailable = await sender.run()

    assert (unavailable.retry, unavailable.delivered) == (2, 0)
    assert [opened(r, endpoint.secret)[1] for r in receiver.received] == ["order.created", "order.created"]

    receiver.answer(200)
    await drain(sender, db_pool)

    every_kind = [r["kind"] for r in await db_pool.fetch("SELECT kind FROM order_events ORDER BY seq")]
    assert await statuses(db_pool) == {"delivered": every_kind}
    got = [opened(r, endpoint.secret) for r in receiver.accepted]
    event_ids = {str(r["id"]) for r in await db_pool.fetch("SELECT id FROM order_events")}
    assert sorted(webhook_id for webhook_id, _, _ in got) == sorted(event_ids)  # each event once
    per_order: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for _, kind, data in got:
        per_order[data["order"]["id"]].append((kind, data["order"]["status"]))
    assert per_order == {
        order["id"]: [("order.created", "pending_payment"), ("order.paid", "paid"), ("order.cancelled", "cancelled")]
        for order in orders
    }
    # The id is the event's, the same on every attempt: the 503 answers named the same events.
    refused_ids = {r.headers["webhook-id"] for r in receiver.received if r.answered == 503}
    assert refused_ids <= event_ids and len(refused_ids) == 2


async def test_an_endpoint_gets_only_the_kinds_it_asked_for(client, db_pool, endpoints, sender, receiver):
    await receiver.start()
    paid_only = await endpoints.register(NewEndpoint(url=receiver.url, events=["order.paid"]))
    tier = await put_tier(client)
    order = await buy(client, tier["id"])
    await admin(client, order, "mark-paid")

    await drain(sender, db_pool)

    assert [opened(r, paid_only.secret)[1] for r in receiver.accepted] == ["order.paid"]


async def test_410_gone_stops_every_delivery_to_the_endpoint(client, db_pool, endpoints, sender, receiver):
    await receiver.start()
    receiver.answer(410)
    endpoint = await endpoints.register(NewEndpoint(url=receiver.url, events=list(EVENT_KINDS)))
    tier = await put_tier(client)
    order = await buy(client, tier["id"])
    await admin(client, order, "mark-paid")  # a second event, waiting behind the first

    run = await sender.run()

    assert run.gone == 1 and len(receiver.received) == 1
    assert await statuses(db_pool) == {"gone": ["order.created", "order.paid"]}
    assert [(e.id, e.active) for e in await endpoints.list()] == [(endpoint.id, False)]
    await admin(client, order, "cancel")
    await due_now(db_pool)
    later = await sender.run()
    assert (later.fanned_out, later.delivered + later.retry + later.gone) == (1, 0)
    assert len(receiver.received) == 1
    assert await db_pool.fetchval("SELECT count(*) FROM webhook_deliveries") == 2  # none for the cancel


async def test_a_replay_sends_one_delivery_again_as_signed_before(client, db_pool, endpoints, sender, receiver):
    await receiver.start()
    endpoint = await endpoints.register(NewEndpoint(url=receiver.url, events=["order.created"]))
    tier = await put_tier(client)
    await buy(client, tier["id"])
    await drain(sender, db_pool)
    delivery = (await endpoints.deliveries(status="delivered", endpoint_id=None, limit=10, cursor=None)).deliveries[0]

    replayed = await endpoints.replay(uuid.UUID(delivery.id))
    assert (replayed.status, replayed.attempts) == ("pending", 1)
    await sender.run()

    first, again = (opened(r, endpoint.secret) for r in receiver.accepted)
    assert first == again and first[0] == delivery.event_id
    assert receiver.accepted[0].body == receiver.accepted[1].body
    row = await db_pool.fetchrow(
        "SELECT status, attempts FROM webhook_deliveries WHERE id = $1", uuid.UUID(delivery.id)
    )
    assert (row["status"], row["attempts"]) == ("delivered", 2)


async def test_after_a_rotation_both_secrets_sign_so_a_receiver_can_switch(
    client, db_pool, endpoints, sender, receiver
):
    await receiver.start()
    registered = await endpoints.register(NewEndpoint(url=receiver.url, events=["order.created"]))
    rotated = await endpoints.rotate_secret(uuid.UUID(registered.id))
    tier = await put_tier(client)
    await buy(client, tier["id"])

    await drain(sender, db_pool)

    (got,) = receiver.accepted
    assert rotated.secret != registered.secret and rotated.previous_secret_expires_at is not None
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    opened(got, registered.secret)
    opened(got, rotated.secret)


async def test_a_failure_whose_next_try_would_fall_past_the_retry_window_is_final(db_pool, endpoints, receiver):
    await receiver.start()
    receiver.answer(500)
    await endpoints.register(NewEndpoint(url=receiver.url, events=["order.created"]))
    async with db_pool.acquire() as conn, conn.transaction():
        for _ in range(2):
            await record_event(conn, ORDER_CREATED, await an_order(db_pool), {})
    policy = RetryPolicy(base_seconds=10, max_delay_seconds=21600, retry_for_seconds=259200)
    sender = WebhookSender(db_pool, timeout_seconds=2.0, policy=policy)
    try:
        await sender.fan_out()
        # One delivery has been pending for three days less 5 seconds: its next wait (8 s at
        # least) would end past the window.
        old = await db_pool.fetchval(
            "UPDATE webhook_deliveries SET pending_since = now() - make_interval(secs => 259195)"
            " WHERE id = (SELECT min(id::text)::uuid FROM webhook_deliveries) RETURNING id"
        )
        run = await sender.run()
    finally:
        await sender.aclose()

    assert (run.retry, run.failed) == (1, 1)
    rows = {r["id"]: r for r in await db_pool.fetch("SELECT * FROM webhook_deliveries")}
    assert (rows[old]["status"], rows[old]["last_status_code"], rows[old]["last_error"]) == ("failed", 500, "HTTP 500")
    (fresh,) = (r for i, r in rows.items() if i != old)
    assert fresh["status"] == "pending" and fresh["attempts"] == 1


def test_the_backoff_doubles_from_the_base_to_its_cap_with_a_fifth_of_jitter():
    policy = RetryPolicy(base_seconds=10, max_delay_seconds=21600, retry_for_seconds=259200)
    assert [policy.delay(n, draw=0.5) for n in range(1, 14)] == [10 * 2**k for k in range(12)] + [21600]
    assert policy.delay(1, draw=0.0) == 8 and policy.delay(1, draw=0.999999) == pytest.approx(12)
    assert policy.delay(100, draw=0.5) == 21600
    # Without jitter, the attempts in three days: the first, 12 doubling waits, then one each 6 hours.
    waited, attempts = 0.0, 1
    while waited + policy.delay(attempts, draw=0.5) <= policy.retry_for_seconds:
        waited += policy.delay(attempts, draw=0.5)
        attempts += 1
    assert attempts == 23


async def test_two_workers_at_once_never_send_one_delivery_twice(db_pool, endpoints, receiver):
    await receiver.start()
    receiver.delay = 0.01  # sends overlap
    endpoint = await endpoints.register(NewEndpoint(url=receiver.url, events=["order.created"]))
    async with db_pool.acquire() as conn, conn.transaction():
        for _ in range(60):
            await record_event(conn, ORDER_CREATED, await an_order(db_pool), {})
    workers = [WebhookSender(db_pool, timeout_seconds=5.0, policy=RetryPolicy(base_seconds=3600)) for _ in range(2)]
    try:
        await asyncio.gather(*(w.fan_out() for w in workers))
        while await db_pool.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"):
            await asyncio.gather(*(w.run() for w in workers))
    finally:
        for w in workers:
            await w.aclose()

    ids = [opened(r, endpoint.secret)[0] for r in receiver.received]
    assert len(ids) == 60 == len(set(ids))


async def test_concurrent_claims_never_take_one_delivery_twice(db_pool, endpoints, sender):
    await endpoints.register(NewEndpoint(url="http://127.0.0.1:9/never", events=["order.created"]))
    async with db_pool.acquire() as conn, conn.transaction():
        for _ in range(40):
            await record_event(conn, ORDER_CREATED, await an_order(db_pool), {})
    await sender.fan_out()

    claims = await asyncio.gather(*(sender.claim(limit=6) for _ in range(10)))

    claimed = [c.delivery_id for batch in claims for c in batch]
    assert len(claimed) == 40 == len(set(claimed))


async def test_a_broken_event_or_url_fails_its_own_delivery_only(db_pool, endpoints, sender, receiver):
    """One delivery that cannot be sent (an event stored in another shape, a URL the HTTP
    client refuses) is settled on its own; the run goes on and the others arrive."""
    await receiver.start()
    good = await endpoints.register(NewEndpoint(url=receiver.url, events=["order.created"]))
    bad_url = await endpoints.register(NewEndpoint(url="http://placeholder.example/", events=["order.created"]))
    await db_pool.execute(
        "UPDATE webhook_endpoints SET url = 'http://\u00e9xample..com/x' WHERE id = $1", uuid.UUID(bad_url.id)
    )
    async with db_pool.acquire() as conn, conn.transaction():
        broken = await record_event(conn, ORDER_CREATED, await an_order(db_pool), {})
        fine = await record_event(conn, ORDER_CREATED, await an_order(db_pool), {})
    await db_pool.execute("UPDATE order_events SET payload = '{\"order\": 1}' WHERE id = $1", broken)

    run = await sender.run()

    assert (run.delivered, run.failed, run.retry) == (1, 2, 1)
    assert [r.headers["webhook-id"] for r in receiver.accepted] == [str(fine)]
    rows = await db_pool.fetch("SELECT event_id, endpoint_id, status, last_error FROM webhook_deliveries")
    by = {(r["event_id"], str(r["endpoint_id"])): (r["status"], r["last_error"]) for r in rows}
    assert by[(fine, good.id)] == ("delivered", None)
    assert by[(broken, good.id)][0] == by[(broken, bad_url.id)][0] == "failed"
    assert by[(fine, bad_url.id)][0] == "pending" and by[(fine, bad_url.id)][1]


async def test_a_worker_dying_after_sending_leaves_the_delivery_to_be_sent_again(db_pool, endpoints, sender, receiver):
    """At least once: the claim was made and the request sent, then the worker died before
    recording the answer. Once the claim's lease is over the delivery is sent again, with
    the same webhook-id, which is how the receiver knows it already has it."""
    await receiver.start()
    endpoint = await endpoints.register(NewEndpoint(url=receiver.url, events=["order.created"]))
    async with db_pool.acquire() as conn, conn.transaction():
        await record_event(conn, ORDER_CREATED, await an_order(db_pool), {})
    await sender.fan_out()
    (claimed,) = await sender.claim()
    assert claimed.body is not None
    headers = {
        "content-type": "application/json",
        **webhook_headers(claimed.secrets, str(claimed.event_id), int(time.time()), claimed.body),
    }
    await sender.http.post(claimed.url, content=claimed.body, headers=headers)  # ... and the worker dies

    assert (await sender.run()).delivered == 0  # leased: no other worker takes it meanwhile
    await due_now(db_pool)  # the lease is over
    assert (await sender.run()).delivered == 1

    first, second = (opened(r, endpoint.secret) for r in receiver.accepted)
    assert first == second
    row = await db_pool.fetchrow("SELECT status, attempts FROM webhook_deliveries")
    assert (row["status"], row["attempts"]) == ("delivered", 2)
