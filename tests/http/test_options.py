"""``OPTIONS`` lists every method of the path, on every path of the app: the expected
methods come from the app's own routes, so a new route or method is covered as it lands.
A CORS preflight (answered before routing) allows every method the app takes, and no other."""

from __future__ import annotations

import re

from litestar.routes import HTTPRoute

SHOP = "https://shop.example"
_PARAMETER = re.compile(r"\{(\w+):(\w+)\}")
_SAMPLES = {"str": "00000000-0000-4000-8000-000000000001", "uuid": "00000000-0000-4000-8000-000000000001", "int": "1"}


def concrete(path: str) -> str:
    """A path the route matches: each parameter replaced by a sample of its type."""
    return _PARAMETER.sub(lambda m: _SAMPLES.get(m.group(2), "sample"), path)


def routes_and_methods(app) -> list[tuple[str, set[str]]]:
    """Each HTTP route of the app with the methods its handlers take, OPTIONS included."""
    found = []
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            methods = {method for handler in route.route_handlers for method in handler.http_methods}
            found.append((route.path, methods | {"OPTIONS"}))
    return found


def allowed(header: str) -> set[str]:
    return {method.strip() for method in header.split(",") if method.strip()}


async def test_options_lists_every_method_of_every_path(api_with):
    async with api_with() as api:
        routes = routes_and_methods(api.app)
        assert any(len(methods) > 2 for _, methods in routes)  # paths of several handlers are among them
        wrong = {}
        for path, methods in routes:
            response = await api.options(concrete(path))
            if response.status_code != 204 or allowed(response.headers.get("allow", "")) != methods:
                wrong[path] = (response.status_code, response.headers.get("allow"), sorted(methods))
    assert not wrong, wrong


async def test_a_cors_preflight_allows_the_methods_of_the_app_and_no_other(api_with):
    async with api_with(cors_allow_origins=(SHOP,)) as api:
        routes = routes_and_methods(api.app)
        every = set().union(*(methods for _, methods in routes))
        for path, methods in routes:
            for method in methods - {"OPTIONS"}:
                preflight = await api.options(
                    concrete(path), headers={"Origin": SHOP, "Access-Control-Request-Method": method}
                )
                assert preflight.status_code == 204, (path, method, preflight.text)
                assert allowed(preflight.headers["access-control-allow-methods"]) == every, (path, method)
        refused = await api.options("/api/cart", headers={"Origin": SHOP, "Access-Control-Request-Method": "PATCH"})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
