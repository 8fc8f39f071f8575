"""The storefront's pages and assets, answered from memory.

``templates/`` holds the shared layout (header, cart drawer) and each page's main part;
``static/`` the stylesheet, the ES modules and the icon. Both are read once, when this
module is imported: each page is its part inside the layout, with its module named, so a
browser loads plain files and no build step exists. Every answer carries a strong ETag
(304 when ``If-None-Match`` names it) and ``Cache-Control: no-cache``: a browser keeps the
files and asks whether they changed, so a deployment never mixes old and new modules.

The pages carry their own Content-Security-Policy (``PAGE_CSP``): script, style, fetch and
images from this origin only (and VietQR's image host, for the transfer's QR code), no
inline script or style, Trusted Types required (no HTML from strings), no form posted
by the browser itself, no framing. The security hook (``service.http.security``) keeps a
header a response names, and adds the others.

These routes are outside ``/api/``: no rate limit, no Redis; the routes' matching is
Litestar's, so the API's routes pay nothing for them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, NamedTuple

from litestar import Response, get
from litestar.params import FromPath, HeaderParameter
from litestar.response import Redirect

from service.errors import NotFound

_HERE = Path(__file__).parent
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: https://img.vietqr.io; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'"
)
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
}
# page -> its module and its title before the module translates it (Vietnamese, the default)
PAGES = {
    "event": "Chọn vé",
    "cart": "Giỏ hàng",
    "checkout": "Thanh toán",
    "order": "Đơn hàng",
}


IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match")]


class File(NamedTuple):
    body: bytes
    headers: dict[str, str]


def _file(body: bytes, content_type: str, **extra: str) -> File:
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    return File(body, {"content-type": content_type, "etag": etag, "cache-control": "no-cache", **extra})


def load_assets(folder: Path = _HERE / "static") -> dict[str, File]:
    """Every file of ``static/`` by name (one level: a name is never a path)."""
    return {
        path.name: _file(path.read_bytes(), _TYPES[path.suffix])
        for path in sorted(folder.iterdir())
        if path.is_file() and path.suffix in _TYPES
    }


def compose_pages(folder: Path = _HERE / "templates") -> dict[str, File]:
    """Each page: its main part in the layout, with its title and module named."""
    layout = (folder / "layout.html").read_text()
    pages = {}
    for page, title in PAGES.items():
        html = (
            layout.replace("{{page}}", page)
            .replace("{{title}}", title)
            .replace("{{main}}", (folder / f"{page}.html").read_text().strip())
        )
        pages[page] = _file(
            html.encode(),
            _TYPES[".html"],
            **{"content-security-policy": PAGE_CSP, "cross-origin-opener-policy": "same-origin"},
        )
    return pages


ASSETS = load_assets()
PAGE_FILES = compose_pages()


def _answer(file: File, if_none_match: str | None) -> Response[bytes]:
    if if_none_match and file.headers["etag"] in (tag.strip().removeprefix("W/") for tag in if_none_match.split(",")):
        return Response(b"", status_code=304, headers={k: v for k, v in file.headers.items() if k != "content-type"})
    return Response(file.body, headers=file.headers)


def _page(name: str, if_none_match: str | None) -> Response[bytes]:
    return _answer(PAGE_FILES[name], if_none_match)


@get("/", include_in_schema=False, sync_to_thread=False)
def home() -> Redirect:
    # No list of events exists to show: the cart, with links to its events, is the start.
    return Redirect("/cart", status_code=302)


@get("/events/{event_id:str}", include_in_schema=False, sync_to_thread=False)
def event_page(if_none_match: IfNoneMatch = None) -> Response[bytes]:
    return _page("event", if_none_match)


@get("/cart", include_in_schema=False, sync_to_thread=False)
def cart_page(if_none_match: IfNoneMatch = None) -> Response[bytes]:
    return _page("cart", if_none_match)


@get("/checkout", include_in_schema=False, sync_to_thread=False)
def checkout_page(if_none_match: IfNoneMatch = None) -> Response[bytes]:
    return _page("checkout", if_none_match)


@get("/orders/{order_id:str}", include_in_schema=False, sync_to_thread=False)
def order_page(if_none_match: IfNoneMatch = None) -> Response[bytes]:
    return _page("order", if_none_match)


@get("/assets/{name:str}", include_in_schema=False, sync_to_thread=False)
def asset(name: FromPath[str], if_none_match: IfNoneMatch = None) -> Response[bytes]:
    file = ASSETS.get(name)
    if file is None:
        raise NotFound(f"No asset {name}")
    return _answer(file, if_none_match)


ROUTES = [home, event_page, cart_page, checkout_page, order_page, asset]
