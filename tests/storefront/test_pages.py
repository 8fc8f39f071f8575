"""The storefront's pages and files as the server answers them, in process (no browser): their
own Content-Security-Policy, no inline script or style, every file's type and revalidation,
and texts present in both languages. The journeys in a browser are in test_journeys.py."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest_asyncio

from service.http.security import STRICT_CSP
from service.storefront import handlers as storefront
from tests.api import api_client

STATIC = Path(storefront.__file__).parent / "static"
TEMPLATES = Path(storefront.__file__).parent / "templates"
PAGES = {
    "event": f"/events/{uuid.uuid4()}",
    "cart": "/cart",
    "checkout": "/checkout",
    "order": f"/orders/{uuid.uuid4()}",
}
EVERYWHERE = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


@pytest_asyncio.fixture(loop_scope="session")
async def api(settings):
    async with api_client(settings) as client:
        yield client


class Markup(HTMLParser):
    """What a page's HTML holds that a CSP without 'unsafe-inline' would refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
        if tag == "style":
            self.inline.append("<style>")
        self.inline += [f"{tag} {name}" for name in attributes if name.startswith("on") or name == "style"]

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append(f"script text {data[:40]!r}")


async def test_each_page_has_its_own_policy_and_loads_its_module(api):
    for page, path in PAGES.items():
        response = await api.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["content-security-policy"] == storefront.PAGE_CSP
        assert all(response.headers.get(name) == value for name, value in EVERYWHERE.items()), path
        assert response.headers["cache-control"] == "no-cache"
        markup = Markup()
        markup.feed(response.text)
        assert markup.scripts == [{"type": "module", "src": f"/assets/{page}.js"}], path
        assert markup.inline == [], path


def test_the_page_policy_allows_this_origin_only_and_no_inline_code():
    directives = dict(
        (name, values) for name, _, values in (d.strip().partition(" ") for d in storefront.PAGE_CSP.split(";"))
    )
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no other host
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["img-src"] == "'self' data: https://img.vietqr.io"  # the transfer's QR code
    assert directives["frame-ancestors"] == "'none'" and directives["form-action"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'" and directives["trusted-types"] == "'none'"


def test_no_module_builds_html_from_strings():
    # Trusted Types would throw on these in the browser; none of them belongs in the shop.
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function")
    for module in STATIC.glob("*.js"):
        assert not sinks.findall(module.read_text()), module.name


async def test_assets_have_their_types_an_etag_and_answer_304_when_unchanged(api):
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    files = sorted(p for p in STATIC.iterdir() if p.is_file())
    assert {p.suffix for p in files} <= set(types)
    for path in files:
        response = await api.get(f"/assets/{path.name}")
        assert response.status_code == 200, path.name
        assert response.content == path.read_bytes()
        assert response.headers["content-type"] == types[path.suffix]
        assert response.headers["cache-control"] == "no-cache"
        etag = response.headers["etag"]
        again = await api.get(f"/assets/{path.name}", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert (await api.get(f"/assets/{path.name}", headers={"If-None-Match": '"old"'})).status_code == 200
    page = await api.get("/cart")
    assert (await api.get("/cart", headers={"If-None-Match": f"W/{page.headers['etag']}"})).status_code == 304


async def test_unknown_files_and_paths_out_of_the_folder_are_not_found(api):
    for path in ("/assets/nope.js", "/assets/..%2Fhandlers.py", "/assets/%2e%2e%2f__init__.py", "/assets/layout.html"):
        response = await api.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["content-security-policy"] == STRICT_CSP.decode()


async def test_the_home_page_is_the_cart_and_the_api_keeps_its_strict_policy(api):
    home = await api.get("/", follow_redirects=False)
    assert home.status_code == 302 and home.headers["location"] == "/cart"
    cart = await api.get("/api/cart")
    assert cart.headers["content-security-policy"] == STRICT_CSP.decode()
    assert cart.headers["cache-control"] == "no-store"


def _keys(block: str) -> set[str]:
    return set(re.findall(r'^\s{4}"([\w.-]+)":', block, re.MULTILINE))


def test_every_text_the_pages_use_is_there_in_vietnamese_and_english():
    source = (STATIC / "i18n.js").read_text()
    vietnamese = _keys(source.split("\n  vi: {", 1)[1].split("\n  en: {", 1)[0])
    english = _keys(source.split("\n  en: {", 1)[1].split("\n};", 1)[0])
    assert vietnamese and vietnamese == english
    used = set()
    for module in STATIC.glob("*.js"):
        used |= set(re.findall(r'\bt\("([\w.-]+)"', module.read_text()))
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r'data-i18n(?:-aria-label)?="([\w.-]+)"', template.read_text()))
    used |= {f"title.{page}" for page in storefront.PAGES}
    dynamic = {  # built from the server's words: order.status.<status>, promo.reason.<reason>, ...
        key
        for key in vietnamese
        if key.startswith(("order.status.", "order.intro.", "order.ticket.", "promo.reason.", "title."))
    }
    assert used - {"title.{{page}}"} <= vietnamese
    assert vietnamese - used - dynamic == set()  # none left over either


def test_the_storefront_files_reach_the_image():
    from tests.deploy.test_image import _dockerignore_excludes, _stages

    copied = {source.rstrip("/") for i, a in _stages()[0] if i == "COPY" for source in a.split()[:-1]}
    files = [p.relative_to(STATIC.parents[2]).as_posix() for p in (*STATIC.iterdir(), *TEMPLATES.iterdir())]
    assert "service/storefront/static/layout.js" in files and "service/storefront/templates/layout.html" in files
    for name in files:
        assert not _dockerignore_excludes(name), f"{name} is not in the build context"
        assert any(name.startswith(f"{source}/") for source in copied), f"{name} is not copied"
