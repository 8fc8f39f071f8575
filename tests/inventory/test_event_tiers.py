"""GET /api/events/{event_id}/tiers: an event's public catalogue (the storefront's event page).

Definitions from PostgreSQL, kept a few seconds per process; seats left and sale status from
Redis, live; cacheable (Cache-Control, ETag, 304); refusals as problem documents."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import msgspec

from service.inventory import listing
from service.keys import Keys
from tests.api import api_client, put_tier

PROBLEM = "application/problem+json"


def _in(days: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


async def test_the_active_tiers_cheapest_first_with_seats_left_and_sale_status(api):
    event = str(uuid.uuid4())
    vip = await put_tier(api, event_id=event, name="VIP", price=2_000_000, quantity_total=50, max_per_order=4)
    general = await put_tier(api, event_id=event, name="General", price=500_000, quantity_total=1000, max_per_order=6)
    early = await put_tier(api, event_id=event, name="Later", price=700_000, sales_start=_in(1))
    past = await put_tier(api, event_id=event, name="Past", price=800_000, sales_end=_in(-1), sales_start=_in(-2))
    await put_tier(api, event_id=event, name="Hidden", price=100_000, active=False)
    await put_tier(api, event_id=str(uuid.uuid4()), name="Other event")

    response = await api.get(f"/api/events/{event}/tiers")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["event_id"] == event
    assert [t["name"] for t in body["tiers"]] == ["General", "Later", "Past", "VIP"]  # cheapest first, inactive out
    first = body["tiers"][0]
    assert first == {
        "id": general["id"],
        "name": "General",
        "price": 500_000,
        "currency": "VND",
        "max_per_order": 6,
        "sales_start": None,
        "sales_end": None,
        "status": "on-sale",
        "available": 1000,
    }
    statuses = {t["id"]: t["status"] for t in body["tiers"]}
    assert statuses == {general["id"]: "on-sale", early["id"]: "not-open", past["id"]: "closed", vip["id"]: "on-sale"}


async def test_max_per_order_is_capped_by_the_services_line_limit(settings, clean_state):
    async with api_client(msgspec.structs.replace(settings, max_quantity_per_line=3)) as api:
        tier = await put_tier(api, max_per_order=10)
        body = (await api.get(f"/api/events/{tier['event_id']}/tiers")).json()
    assert body["tiers"][0]["max_per_order"] == 3


async def test_seats_left_are_live_while_the_definitions_are_cached(api):
    tier = await put_tier(api, quantity_total=5, max_per_order=5)
    url = f"/api/events/{tier['event_id']}/tiers"
    assert (await api.get(url)).json()["tiers"][0]["available"] == 5
    added = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 5})
    assert added.status_code == 201
    after = (await api.get(url)).json()["tiers"][0]
    assert (after["available"], after["status"]) == (0, "sold-out")


async def test_an_admin_change_shows_at_once_in_the_process_that_made_it(api):
    tier = await put_tier(api, name="Before")
    url = f"/api/events/{tier['event_id']}/tiers"
    assert (await api.get(url)).json()["tiers"][0]["name"] == "Before"
    await put_tier(api, tier_id=tier["id"], event_id=tier["event_id"], name="After")
    assert (await api.get(url)).json()["tiers"][0]["name"] == "After"


async def test_tiers_redis_lost_are_installed_again(api, redis, settings):
    tier = await put_tier(api, quantity_total=7)
    await redis.delete(Keys(settings.key_prefix).event(tier["event_id"]).inventory)
    body = (await api.get(f"/api/events/{tier['event_id']}/tiers")).json()
    assert [(t["id"], t["available"]) for t in body["tiers"]] == [(tier["id"], 7)]


async def test_unknown_and_malformed_events_are_refused_as_problems(api):
    unknown = await api.get(f"/api/events/{uuid.uuid4()}/tiers")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith(PROBLEM)
    assert unknown.json()["code"] == "not-found"
    inactive_only = await put_tier(api, active=False)
    assert (await api.get(f"/api/events/{inactive_only['event_id']}/tiers")).status_code == 404
    malformed = await api.get("/api/events/not-a-uuid/tiers")
    assert malformed.status_code == 422 and malformed.json()["code"] == "validation-error"
    assert malformed.json()["field"] == "event_id"


async def test_cacheable_with_an_etag_and_revalidated_by_if_none_match(api):
    tier = await put_tier(api, quantity_total=10)
    url = f"/api/events/{tier['event_id']}/tiers"
    first = await api.get(url)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=5"  # not the API's no-store
    assert etag.startswith('"') and etag.endswith('"')

    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = await api.get(url, headers={"If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.content == b"" and again.headers["etag"] == etag
        assert again.headers["cache-control"] == "public, max-age=5"

    assert (await api.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
    await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
    changed = await api.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["tiers"][0]["available"] == 9


async def test_rate_limited_like_every_other_read(settings, clean_state):
    limits = {
        "rate_limit_per_minute": 1,
        "rate_limit_burst": 1,
        "rate_limit_address_per_minute": 1,
        "rate_limit_address_burst": 1,
    }
    async with api_client(msgspec.structs.replace(settings, **limits)) as api:
        tier = await put_tier(api)  # the admin key is never limited
        url = f"/api/events/{tier['event_id']}/tiers"
        assert (await api.get(url)).status_code == 200
        refused = await api.get(url)
    assert refused.status_code == 429 and refused.json()["code"] == "rate-limited"
    assert int(refused.headers["retry-after"]) >= 1


async def test_a_crowd_of_misses_costs_one_query_and_an_outage_serves_the_last_copy(api, db_pool, monkeypatch):
    tier = await put_tier(api)
    url = f"/api/events/{tier['event_id']}/tiers"
    assert (await api.get(url)).status_code == 200  # the app has read the definitions once
    real = listing.fetch_event_tiers
    queries = 0

    async def counted(conn, event_id):
        nonlocal queries
        queries += 1
        await asyncio.sleep(0.05)  # the crowd arrives while the one query runs
        return await real(conn, event_id)

    monkeypatch.setattr(listing, "fetch_event_tiers", counted)
    crowd_listing = listing.EventListing(db_pool, None, None)  # definitions need PostgreSQL only
    crowd = await asyncio.gather(*(crowd_listing.definitions(tier["event_id"]) for _ in range(20)))
    assert queries == 1 and {rows[0].name for rows in crowd} == {tier["name"]}

    async def down(conn, event_id):
        raise ConnectionRefusedError("PostgreSQL is down")

    monkeypatch.setattr(listing, "DEFINITIONS_TTL_SECONDS", 0.0)
    monkeypatch.setattr(listing, "fetch_event_tiers", down)
    stale = await api.get(url)
    assert stale.status_code == 200 and stale.json()["tiers"][0]["id"] == tier["id"]
    never_read = await api.get(f"/api/events/{uuid.uuid4()}/tiers")
    assert never_read.status_code == 503 and never_read.json()["code"] == "unavailable"


async def test_in_the_openapi_document_with_its_cache_headers_and_304(api):
    document = (await api.get("/schema/openapi.json")).json()
    operation = document["paths"]["/api/events/{event_id}/tiers"]["get"]
    assert {"200", "304", "404", "422", "429", "503"} <= set(operation["responses"])
    assert {"ETag", "Cache-Control"} <= set(operation["responses"]["200"]["headers"])
    assert "If-None-Match" in {p["name"] for p in operation["parameters"]}
    assert "content" not in operation["responses"]["304"]
