"""The interactive API docs at ``/schema``: Swagger UI, served from the service itself.

Litestar's viewers (Redoc, Swagger UI, Elements, RapiDoc) load their scripts from public
CDNs, so on a network without the internet they are blank pages. Only Swagger UI is served
here, and its files come from ``service/http/swagger_ui/``: the npm package
``swagger-ui-dist`` (version in its ``package.json``, licence in ``LICENSE`` and ``NOTICE``),
checked in as published (README there says how to update it). Swagger UI, not Redoc: the docs
are meant to be tried (its "Try it out" sends the request, "Authorize" holds the admin key,
the bearer token and the cart token), and Redoc only reads.

The page names no other origin and runs no inline script (the start-up is ``/schema/init.js``,
the document is fetched from ``/schema/openapi.json``), so ``service.http.security`` gives it a
Content-Security-Policy that lets it load from the service only.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from litestar import Request, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import OpenAPIRenderPlugin, YamlRenderPlugin
from litestar.params import FromPath
from litestar.response import File

SCHEMA_PATH = "/schema"
ASSETS = Path(__file__).parent / "swagger_ui"
SWAGGER_UI_VERSION: str = json.loads((ASSETS / "package.json").read_text())["version"]
_FILES = frozenset(path.name for path in ASSETS.iterdir() if path.is_file())
ASSETS_PATH = "/assets"  # under SCHEMA_PATH
# Versioned in the URL, so a browser may keep a file for a day and never mixes two releases.
_ASSET = f"{SCHEMA_PATH}{ASSETS_PATH}/{{name}}?v={SWAGGER_UI_VERSION}"

# Swagger UI's start-up, a file of its own so that the page needs no inline script. The
# document's URL comes from the page; no validator badge (it would call validator.swagger.io).
INIT_JS = b"""\
// Deferred, after swagger-ui-bundle.js: the page is parsed when this runs.
var root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.spec,
  domNode: root,
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


class LocalSwaggerUI(OpenAPIRenderPlugin):
    """Swagger UI from the service's own files, at ``/schema`` and ``/schema/swagger``."""

    def __init__(self) -> None:
        favicon = f"<link rel='icon' type='image/png' href='{_ASSET.format(name='favicon-32x32.png')}'>"
        super().__init__(path=["/", "/swagger"], favicon=favicon, style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema.get("info", {}).get("title", "API")))
        spec = escape(self.get_openapi_json_route(request))
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{self.favicon}
<link rel="stylesheet" href="{_ASSET.format(name="swagger-ui.css")}">
<script src="{_ASSET.format(name="swagger-ui-bundle.js")}" defer></script>
<script src="{SCHEMA_PATH}/init.js?v={SWAGGER_UI_VERSION}" defer></script>
</head>
<body style="margin: 0">
<div id="swagger-ui" data-spec="{spec}"></div>
</body>
</html>
""".encode()


@get("/init.js", media_type="text/javascript", include_in_schema=False, sync_to_thread=False)
def init_js() -> bytes:
    return INIT_JS


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """OpenAPIConfig's viewers: Swagger UI at ``/schema``; the document as JSON (Litestar adds
    it) and YAML. Redoc, Elements and RapiDoc are not served (404)."""
    return [LocalSwaggerUI(), YamlRenderPlugin(path=["/openapi.yaml", "/openapi.yml"])]


# One GET handler rather than Litestar's static files router, whose GET and HEAD handlers of
# one path would get Litestar's OPTIONS answer listing only one of them (service/http/options.py).
@get(
    f"{ASSETS_PATH}/{{name:str}}",
    include_in_schema=False,
    sync_to_thread=False,
    cache_control=CacheControlHeader(max_age=86_400, public=True),
)
def asset(name: FromPath[str]) -> File:
    if name not in _FILES:
        raise NotFoundException(f"No file {name!r} in the schema viewer's assets")
    return File(ASSETS / name, filename=name, content_disposition_type="inline")


def openapi_router() -> Router:
    """OpenAPIConfig's router (``/schema``), holding Swagger UI's files and start-up script;
    Litestar adds the viewers' pages to it. A new one per app: registering changes it."""
    return Router(SCHEMA_PATH, route_handlers=[asset, init_js], include_in_schema=False)
