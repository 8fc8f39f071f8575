"""Route guards: run before the body is parsed, so a caller without the key learns
nothing about what a valid body would be."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.auth import check_admin_key
from service.http.openapi import ADMIN_KEY


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    check_admin_key(connection.app.state.services.settings.admin_api_key, connection.headers.get("x-admin-key"))


# Spread into an admin route's decorator: the guard, the OpenAPI tag and security scheme.
ADMIN: dict[str, Any] = {"guards": [admin_guard], "tags": ["admin"], "security": ADMIN_KEY}
