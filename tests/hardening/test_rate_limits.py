"""The general rate limit of /api/*: one bucket per cart (a request that names one) or per
client address (one that does not), spent by one script call; exempt callers and routes;
the client address behind trusted proxies."""

from __future__ import annotations

import inspect
import re
import uuid

import httpx
import pytest

from devtools import PROJECT_ROOT
from devtools.devserver import _api_command
from loadtest.server import ServerUnderTest
from service.http.forwarded import ClientAddresses
from service.http.ratelimit import client_subject
from service.redis.scripts import Scripts
from service.settings import Settings, SettingsError
from tests.api import ADMIN_HEADERS, bearer, put_tier
from tests.conftest import TEST_SECRETS
from tests.hardening.conftest import is_problem, keys_matching
from tests.live_server import live_server

pytestmark = pytest.mark.usefixtures("clean_state")

# The address's bucket as small as the cart's, so tests can empty either one.
LIMITED = {
    "rate_limit_per_minute": 6,
    "rate_limit_burst": 3,
    "rate_limit_address_per_minute": 6,
    "rate_limit_address_burst": 3,
}
SERVICE_KEY = "trusted-backend-key"


def add_body(tier_id: str, quantity: int = 1) -> dict:
    return {"tier_id": tier_id, "quantity": quantity}


async def held(api, tier_id: str) -> int:
    return (await api.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)).json()["inventory"]["held"]


async def test_a_flood_of_token_less_adds_creates_only_a_burst_of_carts_then_429(api_with, redis):
    async with api_with(**LIMITED) as api:
        tier = await put_tier(api, quantity_total=100)
        answers = []
        for _ in range(10):
            api.cookies.clear()  # a stranger each time: no token, no cookie
            answers.append(await api.post("/api/cart/items", json=add_body(tier["id"], 2)))
        assert [a.status_code for a in answers] == [201] * 3 + [429] * 7
        refused = answers[-1]
        assert is_problem(refused, 429, "rate-limited")
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-remaining"] == "0"
        assert "x-cart-token" not in refused.headers and "set-cookie" not in refused.headers
        # Refused requests changed nothing: three carts, six seats.
        assert len(await keys_matching(redis, "{c:*}:meta")) == 3
        assert await held(api, tier["id"]) == 6


async def test_token_less_reads_create_nothing_and_spend_the_address_bucket(api_with, redis):
    async with api_with(**LIMITED) as api:
        statuses = [(await api.get("/api/cart")).status_code for _ in range(5)]
        assert statuses == [200] * 3 + [429] * 2
        assert await keys_matching(redis, "{c:*}") == []
        assert len(await keys_matching(redis, "{rl:client:*}")) == 1


async def test_limited_routes_carry_ratelimit_headers(api_with):
    async with api_with(**LIMITED) as api:
        first = await api.get("/api/cart")
        second = await api.get("/api/cart")
    assert first.headers["ratelimit-limit"] == "3"
    assert [first.headers["ratelimit-remaining"], second.headers["ratelimit-remaining"]] == ["2", "1"]
    assert int(second.headers["ratelimit-reset"]) >= 1
    assert "retry-after" not in first.headers


async def test_health_metrics_and_schema_are_never_limited(api_with):
    async with api_with(rate_limit_per_minute=1, rate_limit_burst=1) as api:
        for path in ("/health/live", "/health/ready", "/metrics", "/schema/openapi.json"):
            answers = [await api.get(path) for _ in range(4)]
            assert {a.status_code for a in answers} == {200}, path
            assert not any("ratelimit-limit" in a.headers for a in answers), path


async def test_each_cart_has_its_own_bucket_and_an_address_without_one_has_another(api_with):
    async with api_with(**LIMITED) as api:
        tier = await put_tier(api)
        api.cookies.clear()
        token = (await api.post("/api/cart/items", json=add_body(tier["id"]))).headers["x-cart-token"]
        api.cookies.clear()
        mine = {"X-Cart-Token": token}
        assert [(await api.get("/api/cart", headers=mine)).status_code for _ in range(4)] == [200] * 3 + [429]
        # The address's bucket spent one (the add that made the cart): two left.
        assert [(await api.get("/api/cart")).status_code for _ in range(3)] == [200, 200, 429]
        user = bearer(api.app.state.services.settings, "user-1")
        assert [(await api.get("/api/cart", headers=user)).status_code for _ in range(4)] == [200] * 3 + [429]


async def test_a_forged_token_spends_the_address_bucket_not_a_fresh_one(api_with):
    async with api_with(**LIMITED) as api:
        answers = []
        for _ in range(5):
            forged = f"v1.{uuid.uuid4()}.not-a-signature"
            answers.append((await api.get("/api/cart", headers={"X-Cart-Token": forged})).status_code)
        assert answers == [401] * 3 + [429] * 2


async def test_trusted_backends_and_the_admin_are_not_limited_and_a_wrong_key_is(api_with):
    async with api_with(**LIMITED, trusted_service_key=SERVICE_KEY) as api:
        trusted = [await api.get("/api/cart", headers={"X-Service-Key": SERVICE_KEY}) for _ in range(6)]
        assert {a.status_code for a in trusted} == {200}
        assert not any("ratelimit-limit" in a.headers for a in trusted)
        tier = await put_tier(api)
        admin = [await api.get(f"/api/admin/tiers/{tier['id']}", headers=ADMIN_HEADERS) for _ in range(6)]
        assert {a.status_code for a in admin} == {200}
        wrong = [
            (await api.get("/api/cart", headers={"X-Service-Key": SERVICE_KEY + "x"})).status_code for _ in range(4)
        ]
        assert wrong == [200] * 3 + [429]
        bad_admin = [
            (await api.get(f"/api/admin/tiers/{tier['id']}", headers={"X-Admin-Key": "guess"})).status_code
            for _ in range(4)
        ]
        assert bad_admin == [429] * 4  # the address's bucket is empty already


async def test_one_script_call_per_limited_request_and_none_when_off(api_with, monkeypatch, redis):
    calls = []
    real = Scripts.rate_limit

    async def counted(self, *args, **kwargs):
        calls.append(args[0])
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(Scripts, "rate_limit", counted)
    async with api_with(rate_limit_per_minute=600, rate_limit_burst=100) as api:
        tier = await put_tier(api)  # the admin: exempt
        await api.post("/api/cart/items", json=add_body(tier["id"]))
        await api.get("/api/cart")
        await api.get("/health/live")
        assert len(calls) == 2
    calls.clear()
    before = set(await keys_matching(redis, "{rl:*"))  # block one's buckets (they expire in ~100 ms)
    async with api_with(rate_limit_per_minute=0) as api:
        tier = await put_tier(api)
        for _ in range(20):
            await api.post("/api/cart/items", json=add_body(tier["id"]))
            assert "ratelimit-limit" not in (await api.get("/api/cart")).headers
    assert calls == []
    assert set(await keys_matching(redis, "{rl:*")) <= before


def test_an_ipv6_client_counts_by_its_64_and_ipv4_by_its_address():
    a = client_subject("2001:db8:1:2:aaaa::1")
    b = client_subject("2001:db8:1:2:ffff::9")
    assert a == b and a.name == "2001:db8:1:2::/64"
    assert client_subject("2001:db8:1:3::1") != a
    assert client_subject("192.0.2.7").name == "192.0.2.7"
    assert ClientAddresses(()).client({"client": None, "headers": []}) == "unknown"


# -- behind a proxy: the client address from trusted proxies' X-Forwarded-For ---------------

# The API behind a proxy, through a real uvicorn as deployed. On Linux all of 127/8 is
# loopback: the "proxy" connects from 127.0.0.2, which is not uvicorn's default trusted
# 127.0.0.1, and the untrusted client from 127.0.0.1, which is.
PROXY = "127.0.0.2"
ADDRESS_LIMITED = {
    "RATE_LIMIT_PER_MINUTE": "6",
    "RATE_LIMIT_BURST": "3",
    "RATE_LIMIT_ADDRESS_PER_MINUTE": "6",
    "RATE_LIMIT_ADDRESS_BURST": "3",
}


def _statuses(client: httpx.Client, count: int, forwarded_for: str) -> list[int]:
    return [client.get("/api/cart", headers={"X-Forwarded-For": forwarded_for}).status_code for _ in range(count)]


def test_two_clients_behind_one_trusted_proxy_are_limited_separately(settings):
    with (
        live_server(settings, **ADDRESS_LIMITED, TRUSTED_PROXIES=f"{PROXY}/32") as server,
        httpx.Client(base_url=server.base_url, transport=httpx.HTTPTransport(local_address=PROXY)) as proxy,
    ):
        # As an ingress sends them: what the client claimed, then the address it saw.
        assert _statuses(proxy, 4, "198.51.100.1, 203.0.113.1") == [200] * 3 + [429]
        assert _statuses(proxy, 4, "203.0.113.2") == [200] * 3 + [429]
        # The client's own claim (left of what the proxy saw) buys no fresh bucket.
        assert _statuses(proxy, 1, "198.51.100.9, 203.0.113.1") == [429]
        assert _statuses(proxy, 1, "") == [200]  # the proxy's own requests: its own bucket


def test_an_untrusted_peers_x_forwarded_for_is_ignored(settings):
    # 127.0.0.1 is trusted by uvicorn's own proxy-headers default: the server must not use it.
    with (
        live_server(settings, **ADDRESS_LIMITED, TRUSTED_PROXIES=f"{PROXY}/32") as server,
        httpx.Client(base_url=server.base_url) as direct,
    ):
        statuses = [
            direct.get("/api/cart", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(5)
        ]
        assert statuses == [200] * 3 + [429] * 2


def _scope(peer: str | None, *forwarded_for: str) -> dict:
    return {
        "client": (peer, 4711) if peer else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded_for],
    }


INGRESS = ClientAddresses(("10.0.0.0/8", "2001:db8:ffff::/48"))


@pytest.mark.parametrize(
    "peer,forwarded_for,client",
    [
        ("192.0.2.1", ["203.0.113.5"], "192.0.2.1"),  # an untrusted peer: its header is ignored
        ("10.1.2.3", [], "10.1.2.3"),  # a proxy's own request
        ("10.1.2.3", ["203.0.113.5"], "203.0.113.5"),
        ("10.1.2.3", ["198.51.100.7, 203.0.113.5"], "203.0.113.5"),  # the client's claim on the left: ignored
        ("10.1.2.3", ["198.51.100.7, 203.0.113.5, 10.9.9.9"], "203.0.113.5"),  # two proxies: both skipped
        ("10.1.2.3", ["198.51.100.7", "203.0.113.5, 10.9.9.9"], "203.0.113.5"),  # several headers, in order
        ("10.1.2.3", ["10.7.7.7, 10.9.9.9"], "10.7.7.7"),  # every hop a proxy: the leftmost
        ("10.1.2.3", ["198.51.100.7, not-an-address"], "10.1.2.3"),  # garbage: the nearest proxy counts
        ("10.1.2.3", [""], "10.1.2.3"),
        ("10.1.2.3", ["203.0.113.5:51234"], "203.0.113.5"),  # a port some proxies add
        ("10.1.2.3", ["[2001:db8:1::7]:443"], "2001:db8:1::7"),
        ("10.1.2.3", ["2001:DB8:1::7"], "2001:db8:1::7"),  # normalized: one bucket however written
        ("2001:db8:ffff:1::2", ["203.0.113.5"], "203.0.113.5"),
        ("::ffff:10.1.2.3", ["203.0.113.5"], "203.0.113.5"),  # an IPv4 proxy seen by a dual-stack socket
        ("testclient", ["203.0.113.5"], "testclient"),
    ],
)
def test_the_client_address_is_the_first_untrusted_hop_from_the_right(peer, forwarded_for, client):
    assert INGRESS.client(_scope(peer, *forwarded_for)) == client


def test_nothing_is_trusted_by_default():
    assert ClientAddresses(()).client(_scope("127.0.0.1", "203.0.113.5")) == "127.0.0.1"


@pytest.mark.parametrize(
    "raw,parsed",
    [
        ("", ()),
        (" 10.0.0.0/8 , 192.0.2.7,2001:db8::/32 ", ("10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32")),
    ],
)
def test_trusted_proxies_setting(raw, parsed):
    settings = Settings.from_env({"APP_ENV": "development", "TRUSTED_PROXIES": raw, **TEST_SECRETS})
    assert settings.trusted_proxies == parsed


@pytest.mark.parametrize("raw", ["10.0.0.1/8", "10.0.0.0/33", "proxy.internal", "*"])
def test_a_malformed_trusted_proxy_stops_the_start_up_naming_the_setting(raw):
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        Settings.from_env({"APP_ENV": "development", "TRUSTED_PROXIES": raw, **TEST_SECRETS})


def test_every_uvicorn_this_project_starts_leaves_forwarded_headers_to_the_app():
    """uvicorn's own proxy headers (on by default, trusting 127.0.0.1) would rewrite the
    peer before TRUSTED_PROXIES is consulted: the image, make run, the load tool and the
    tests' live server all turn them off."""
    image = (PROJECT_ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^CMD .*exec uvicorn .*--no-proxy-headers", image, re.MULTILINE)
    assert "--no-proxy-headers" in _api_command("service.app:app", Settings.from_env({**TEST_SECRETS}))
    assert "--no-proxy-headers" in ServerUnderTest("service.app:app", env={}).command()
    assert "--no-proxy-headers" in inspect.getsource(live_server)


async def test_a_cart_token_is_verified_once_per_request_though_the_limiter_and_the_handler_both_ask(
    api_with, monkeypatch
):
    from service.auth import CartTokens

    verified = []
    real_verify = CartTokens.verify

    def counting_verify(self, token):
        verified.append(token)
        return real_verify(self, token)

    async with api_with(rate_limit_per_minute=600, rate_limit_burst=100) as api:
        tier = await put_tier(api, quantity_total=10)
        added = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
        token = added.headers["x-cart-token"]
        api.cookies.clear()
        monkeypatch.setattr(CartTokens, "verify", counting_verify)
        for path in ("/api/cart", "/api/orders"):
            verified.clear()
            method = api.get if path == "/api/cart" else api.post
            kwargs = {} if path == "/api/cart" else {"json": {"email": "a@example.com"}}
            response = await method(path, headers={"X-Cart-Token": token}, **kwargs)
            assert response.status_code in (200, 201), response.text
            assert verified == [token], path  # the limiter's answer reused by the handler
