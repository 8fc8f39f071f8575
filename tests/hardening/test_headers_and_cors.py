"""Security headers on every response (errors and unmatched paths too), and CORS: off unless
CORS_ALLOW_ORIGINS names origins, credentials only for named ones."""

from __future__ import annotations

import pytest

from service.http.security import STRICT_CSP, VIEWER_CSP

pytestmark = pytest.mark.usefixtures("clean_state")

SHOP, EVIL = "https://shop.example", "https://evil.example"
EVERYWHERE = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


def has(response, expected: dict[str, str]) -> bool:
    return all(response.headers.get(name) == value for name, value in expected.items())


async def test_api_answers_and_refusals_carry_every_security_header(api_with):
    api_headers = {**EVERYWHERE, "content-security-policy": STRICT_CSP.decode(), "cache-control": "no-store"}
    async with api_with(
        rate_limit_per_minute=1, rate_limit_burst=1, rate_limit_address_per_minute=1, rate_limit_address_burst=1
    ) as api:
        answers = {
            "ok": await api.get("/api/cart"),
            "rate-limited": await api.get("/api/cart"),
            "validation": await api.post("/api/cart/items", json={"quantity": "x"}, headers={"X-Service-Key": "-"}),
            "unauthorized": await api.get("/api/admin/tiers/00000000-0000-0000-0000-000000000000"),
            "unmatched": await api.get("/api/no-such-thing"),
            "method": await api.patch("/api/cart"),
        }
    assert answers["rate-limited"].status_code == 429
    for name, response in answers.items():
        assert has(response, api_headers), (name, response.status_code, dict(response.headers))


async def test_ops_and_schema_documents_get_the_strict_csp_and_the_schema_pages_the_viewers(api_with):
    async with api_with() as api:
        for path in ("/health/live", "/metrics", "/schema/openapi.json", "/nope"):
            response = await api.get(path)
            assert has(response, {**EVERYWHERE, "content-security-policy": STRICT_CSP.decode()}), path
        for path in ("/schema", "/schema/swagger", "/schema/init.js", "/schema/assets/swagger-ui-bundle.js"):
            page = await api.get(path)  # Swagger UI, from the service only (tests/http/test_schema_viewer.py)
            assert page.status_code == 200 and has(page, {**EVERYWHERE, "content-security-policy": VIEWER_CSP.decode()})


async def test_a_handlers_own_header_is_kept(api_with):
    async with api_with() as api:
        response = await api.get("/metrics")
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    assert response.headers["content-type"].startswith("text/plain")


async def test_cors_is_off_by_default(api_with):
    async with api_with() as api:
        simple = await api.get("/api/cart", headers={"Origin": SHOP})
        preflight = await api.options(
            "/api/cart/items", headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"}
        )
    for response in (simple, preflight):
        assert not any(name.startswith("access-control-allow") for name in response.headers)


async def test_cors_allows_named_origins_with_credentials_and_no_others(api_with):
    async with api_with(cors_allow_origins=(SHOP,)) as api:
        preflight = await api.options(
            "/api/cart/items",
            headers={
                "Origin": SHOP,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-cart-token",
            },
        )
        simple = await api.get("/api/cart", headers={"Origin": SHOP})
        evil_preflight = await api.options(
            "/api/cart/items", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"}
        )
        evil = await api.get("/api/cart", headers={"Origin": EVIL, "Cookie": "cart_token=x"})
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert simple.headers["access-control-allow-origin"] == SHOP
    assert "x-cart-token" in simple.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in evil_preflight.headers
    assert "access-control-allow-origin" not in evil.headers


async def test_a_wildcard_origin_never_allows_credentials(api_with):
    async with api_with(cors_allow_origins=("*",)) as api:
        response = await api.get("/api/cart", headers={"Origin": EVIL, "Cookie": "cart_token=x"})
        preflight = await api.options(
            "/api/cart/items", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"}
        )
    for answer in (response, preflight):
        assert answer.headers.get("access-control-allow-credentials") != "true"
