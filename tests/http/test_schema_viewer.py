"""The interactive docs at /schema: Swagger UI from the service's own files
(service/http/schema_viewer.py), rendered by a real browser that may reach nothing but the
service, under the page's Content-Security-Policy.

The browser is Debian's chromium, driven by Playwright (no browser of Playwright's own is
downloaded). `make test` installs it when missing (`make test-tools`); elsewhere the test
says it is missing and skips, and under CI it fails instead: CI must never skip it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from service.http.schema_viewer import ASSETS, SWAGGER_UI_VERSION
from service.http.security import VIEWER_CSP
from tests.live_server import live_server
from tests.suite_policy import under_ci

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package chromium
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
METHODS = ("get", "put", "post", "delete", "patch")
TYPES = {"js": "text/javascript", "css": "text/css", "png": "image/png"}


def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        if under_ci():
            pytest.fail(f"{CHROMIUM} is not installed (Debian package chromium; make test-tools)")
        pytest.skip(f"{CHROMIUM} is not installed: `make test-tools`")
    return str(CHROMIUM)


def operations(document: dict) -> list[dict]:
    return [operation for item in document["paths"].values() for method, operation in item.items() if method in METHODS]


async def test_swagger_ui_renders_every_operation_with_no_network_but_the_service(settings, tmp_path):
    from playwright.async_api import Route, TimeoutError as PlaywrightTimeoutError, async_playwright

    executable = chromium()
    blocked: list[str] = []
    errors: list[str] = []

    async def only_the_service(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    with live_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            document = (await client.get("/schema/openapi.json")).json()
        expected = operations(document)
        view_cart = document["paths"]["/api/cart"]["get"]["summary"]
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=executable)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                await page.route("**/*", only_the_service)
                page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
                page.on("pageerror", lambda error: errors.append(str(error)))
                answer = await page.goto(f"{server.base_url}/schema")
                assert answer is not None and answer.headers["content-security-policy"] == VIEWER_CSP.decode()

                try:
                    await page.get_by_text(view_cart, exact=True).wait_for()
                except PlaywrightTimeoutError:
                    pytest.fail(f"Swagger UI did not render; asked for other hosts: {blocked}; errors: {errors}")
                assert await page.locator(".opblock").count() == len(expected)
                for summary in (operation["summary"] for operation in expected if operation.get("summary")):
                    assert await page.get_by_text(summary, exact=True).first.is_visible(), summary

                # "Try it out" calls the API from the page (fetch, allowed by connect-src 'self').
                operation = page.locator(".opblock", has=page.get_by_text(view_cart, exact=True))
                await operation.locator(".opblock-summary").click()
                await operation.get_by_role("button", name="Try it out").click()
                await operation.get_by_role("button", name="Execute").click()
                status = operation.locator(".live-responses-table tbody .response-col_status").first
                await status.wait_for()
                assert (await status.inner_text()).strip() == "200"

                screenshot = tmp_path / "schema.png"
                await page.screenshot(path=screenshot, full_page=True)
                print(f"screenshot of /schema: {screenshot}")
            finally:
                await browser.close()
    assert not blocked, f"the page asked for other hosts: {blocked}"
    assert not errors, errors


async def test_the_page_loads_swagger_ui_from_the_service_and_the_other_viewers_are_gone(api_with):
    async with api_with() as api:
        page = await api.get("/schema")
        assets = {
            name: await api.get(f"/schema/assets/{name}?v={SWAGGER_UI_VERSION}")
            for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
        }
        start = await api.get("/schema/init.js")
        others = {
            path: (await api.get(path)).status_code for path in ("/schema/redoc", "/schema/elements", "/schema/rapidoc")
        }
        swagger = await api.get("/schema/swagger")
    assert page.status_code == 200 and "swagger-ui" in page.text
    for url in ("//", "http:", "https:"):
        assert f'="{url}' not in page.text and f"='{url}" not in page.text, url  # names no other origin
    for name, response in assets.items():
        assert response.status_code == 200, name
        assert response.content == (ASSETS / name).read_bytes(), name
        assert "max-age=86400" in response.headers["cache-control"], name
        assert response.headers["content-type"].startswith(TYPES[name.rpartition(".")[2]]), name  # nosniff
    assert start.status_code == 200 and start.headers["content-type"].startswith("text/javascript")
    assert swagger.status_code == 200 and swagger.text == page.text
    assert others == {path: 404 for path in others}
