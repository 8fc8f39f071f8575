"""The webhook admin API (X-Admin-Key): register with the secret shown once, list without
secrets, rotate, deactivate, the deliveries with their status and cursor, replay; every
refusal a problem with its code."""

from __future__ import annotations

import uuid

import pytest

from service.events.signing import secret_key
from tests.api import ADMIN_HEADERS, put_tier
from tests.events.conftest import drain

HOOK = {"url": "https://mail.example.com/hooks/orders", "events": ["order.created", "order.paid"]}


async def register(client, **fields) -> dict:
    response = await client.post("/api/admin/webhooks", json={**HOOK, **fields}, headers=ADMIN_HEADERS)
    assert response.status_code == 201, response.text
    return response.json()


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    return body


async def test_registering_shows_the_secret_once_and_the_list_never(client, db_pool):
    made = await register(client, events=["order.paid", "order.created", "order.paid"], description="mail")

    assert made["secret"].startswith("whsec_") and len(secret_key(made["secret"])) == 32
    assert (made["url"], made["events"], made["active"], made["description"]) == (
        HOOK["url"],
        ["order.paid", "order.created"],
        True,
        "mail",
    )
    listed = (await client.get("/api/admin/webhooks", headers=ADMIN_HEADERS)).json()["endpoints"]
    assert [e["id"] for e in listed] == [made["id"]]
    assert "secret" not in listed[0] and made["secret"] not in str(listed)
    assert await db_pool.fetchval("SELECT secret FROM webhook_endpoints") == made["secret"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"url": "ftp://mail.example.com/x"}, "url"),
        ({"url": "https://user:pw@mail.example.com/x"}, "url"),
        ({"url": "https://mail.example.com/x#frag"}, "url"),
        ({"url": "https:///no-host/at-all"}, "url"),
        ({"url": "https://mail.example.com:99999/x"}, "url"),
        ({"url": "https://\u00e9xample..com/x"}, "url"),
        ({"events": ["order.shipped"]}, "events[0]"),
        ({"events": []}, "events"),
        ({"secret": "whsec_mine"}, "secret"),
    ],
)
async def test_a_bad_registration_is_a_422_naming_the_field(client, db_pool, body, field):
    response = await client.post("/api/admin/webhooks", json={**HOOK, **body}, headers=ADMIN_HEADERS)
    assert problem(response, 422, "validation-error").get("field") == field
    assert await db_pool.fetchval("SELECT count(*) FROM webhook_endpoints") == 0


async def test_every_route_wants_the_admin_key(client):
    endpoint_id, delivery_id = uuid.uuid4(), uuid.uuid4()
    for method, path in [
        ("post", "/api/admin/webhooks"),
        ("get", "/api/admin/webhooks"),
        ("post", f"/api/admin/webhooks/{endpoint_id}/rotate-secret"),
        ("post", f"/api/admin/webhooks/{endpoint_id}/deactivate"),
        ("get", "/api/admin/webhooks/deliveries"),
        ("post", f"/api/admin/webhooks/deliveries/{delivery_id}/replay"),
    ]:
        response = await client.request(method, path, headers={"X-Admin-Key": "wrong"}, json=HOOK)
        problem(response, 401, "unauthorized")


async def test_rotation_shows_a_new_secret_once_and_the_old_one_signs_a_day_more(client, db_pool):
    made = await register(client)

    rotated = await client.post(f"/api/admin/webhooks/{made['id']}/rotate-secret", headers=ADMIN_HEADERS)

    assert rotated.status_code == 200
    body = rotated.json()
    assert body["secret"] != made["secret"] and body["secret"].startswith("whsec_")
    row = await db_pool.fetchrow(
        "SELECT secret, previous_secret, previous_secret_expires_at - now() AS left FROM webhook_endpoints"
    )
    assert (row["secret"], row["previous_secret"]) == (body["secret"], made["secret"])
    assert 23 * 3600 < row["left"].total_seconds() <= 24 * 3600
    unknown = await client.post(f"/api/admin/webhooks/{uuid.uuid4()}/rotate-secret", headers=ADMIN_HEADERS)
    problem(unknown, 404, "not-found")
    problem(await client.post("/api/admin/webhooks/nope/rotate-secret", headers=ADMIN_HEADERS), 422, "validation-error")


async def test_deactivation_stops_the_endpoint_and_fails_its_pending_deliveries(client, db_pool, sender):
    made = await register(client, url="http://127.0.0.1:9/never")
    tier = await put_tier(client)
    added = await client.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
    client.cookies.clear()
    await client.post(
        "/api/orders", json={"email": "b@example.com"}, headers={"X-Cart-Token": added.headers["x-cart-token"]}
    )
    await sender.fan_out()

    first = await client.post(f"/api/admin/webhooks/{made['id']}/deactivate", headers=ADMIN_HEADERS)
    again = await client.post(f"/api/admin/webhooks/{made['id']}/deactivate", headers=ADMIN_HEADERS)

    assert first.status_code == again.status_code == 200
    assert first.json()["active"] is False and first.json()["deactivated_at"] == again.json()["deactivated_at"]
    deliveries = (await client.get("/api/admin/webhooks/deliveries", headers=ADMIN_HEADERS)).json()["deliveries"]
    assert [(d["status"], d["last_error"]) for d in deliveries] == [("failed", "endpoint deactivated")]
    replay = await client.post(f"/api/admin/webhooks/deliveries/{deliveries[0]['id']}/replay", headers=ADMIN_HEADERS)
    problem(replay, 409, "conflict")


async def test_deliveries_page_by_cursor_filter_by_status_and_replay(client, db_pool, sender, receiver):
    await receiver.start()
    made = await register(client, url=receiver.url, events=["order.created"])
    tier = await put_tier(client)
    for _ in range(5):
        added = await client.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
        client.cookies.clear()
        headers = {"X-Cart-Token": added.headers["x-cart-token"]}
        assert (await client.post("/api/orders", json={"email": "b@example.com"}, headers=headers)).status_code == 201
    await drain(sender, db_pool)

    pages, cursor = [], None
    while True:
        params = {"limit": 2, "status": "delivered", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/admin/webhooks/deliveries", params=params, headers=ADMIN_HEADERS)).json()
        pages.append(page["deliveries"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    seen = [d for page in pages for d in page]
    assert [len(p) for p in pages] == [2, 2, 1] and len({d["id"] for d in seen}) == 5
    assert all(d["endpoint_id"] == made["id"] and d["attempts"] == 1 and d["next_attempt_at"] is None for d in seen)
    assert [d["created_at"] for d in seen] == sorted((d["created_at"] for d in seen), reverse=True)
    pending = await client.get("/api/admin/webhooks/deliveries", params={"status": "pending"}, headers=ADMIN_HEADERS)
    assert pending.json() == {"deliveries": [], "next_cursor": None}
    by_endpoint = await client.get(
        "/api/admin/webhooks/deliveries", params={"endpoint_id": str(uuid.uuid4())}, headers=ADMIN_HEADERS
    )
    assert by_endpoint.json()["deliveries"] == []

    replayed = await client.post(f"/api/admin/webhooks/deliveries/{seen[0]['id']}/replay", headers=ADMIN_HEADERS)

    assert replayed.status_code == 202 and replayed.json()["status"] == "pending"
    await drain(sender, db_pool)
    assert len(receiver.accepted) == 6
    assert receiver.accepted[-1].headers["webhook-id"] == seen[0]["event_id"]
    problem(
        await client.post(f"/api/admin/webhooks/deliveries/{uuid.uuid4()}/replay", headers=ADMIN_HEADERS),
        404,
        "not-found",
    )


@pytest.mark.parametrize(
    "params,field",
    [
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"status": "lost"}, "status"),
        ({"endpoint_id": "1234567890123456789012345678901x"}, "endpoint_id"),
        ({"limit": 0}, "limit"),
    ],
)
async def test_bad_delivery_queries_are_422(client, params, field):
    response = await client.get("/api/admin/webhooks/deliveries", params=params, headers=ADMIN_HEADERS)
    body = problem(response, 422, "validation-error")
    assert field in str(body)
