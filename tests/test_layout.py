"""Which way the imports run (docs/architecture.md, "Layout"): read from the source, at
run time and under TYPE_CHECKING alike.

- ``service/`` and ``workers/`` (what the image ships) never import ``devtools``,
  ``tests`` or ``loadtest``.
- A domain area's logic (``service/cart``, ``orders``, ``promo``, ``inventory``, all but
  its ``*handlers.py``, the HTTP edge) never imports ``service.http``, Litestar, nor the
  composition root ``service.wiring``: it is given what it uses.
- The worker never imports ``service.http``.
- The domain areas build on each other in one order, inventory < cart < promo < orders <
  payments: an area imports only areas before it (a cart holds tiers; a promo prices a
  cart; an order is a cart checked out with a promo; a payment pays an order), so none of
  them can form a cycle.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from devtools import PROJECT_ROOT

DOMAIN_AREAS = ("service/cart", "service/orders", "service/promo", "service/inventory", "service/payments")
DEVELOPMENT_ONLY = ("devtools", "tests", "loadtest")
AREA_ORDER = ("service.inventory", "service.cart", "service.promo", "service.orders", "service.payments")


def _modules(folder: str) -> list[Path]:
    return sorted((PROJECT_ROOT / folder).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports: ``a`` for ``from a import b``, or ``a.b`` when ``b``
    is a module of ``a`` (``from service import http``)."""
    package = path.relative_to(PROJECT_ROOT).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = package[: len(package) - node.level + 1] if node.level else ()
            base = ".".join((*parent, *([node.module] if node.module else [])))
            submodules = {
                f"{base}.{alias.name}"
                for alias in node.names
                if (PROJECT_ROOT / base.replace(".", "/") / alias.name).with_suffix(".py").exists()
                or (PROJECT_ROOT / base.replace(".", "/") / alias.name).is_dir()
            }
            names.update(submodules or {base})
    return names


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(
    folders: tuple[str, ...], forbidden: tuple[str, ...], *, skip_handlers: bool = False
) -> set[tuple[str, str]]:
    """(file, module) of each import of a ``forbidden`` package from ``folders``."""
    return {
        (str(path.relative_to(PROJECT_ROOT)), name)
        for folder in folders
        for path in _modules(folder)
        if not (skip_handlers and path.name.endswith("handlers.py"))
        for name in _imports(path)
        if any(_under(name, package) for package in forbidden)
    }


def test_shipped_code_never_imports_development_tools_or_tests():
    assert not _violations(("service", "workers"), DEVELOPMENT_ONLY)


def test_domain_logic_never_imports_the_http_layer_nor_the_container():
    assert _violations(DOMAIN_AREAS, ("service.http", "litestar", "service.wiring"), skip_handlers=True) == set()


def test_the_worker_never_imports_the_http_layer():
    assert _violations(("workers",), ("service.http",)) == set()


def test_each_domain_area_imports_only_the_areas_before_it():
    backwards = {
        (file, name)
        for i, area in enumerate(AREA_ORDER)
        for file, name in _violations((area.replace(".", "/"),), AREA_ORDER[i + 1 :])
    }
    assert backwards == set()


def test_a_buyers_route_asks_for_at_most_one_dependency(settings):
    """Litestar resolves two or more dependencies of a handler concurrently, in an anyio task
    group per request: half a millisecond on the promo route (service/wiring.py)."""
    from service.app import create_app

    asked = {
        f"{sorted(handler.http_methods)} {route.path}": sorted(
            set(handler.resolve_dependencies()) & set(inspect.signature(handler.fn).parameters)
        )
        for route in create_app(settings).routes
        for handler in getattr(route, "route_handlers", [])
        if not route.path.startswith("/api/admin/")
    }
    assert asked, "no route found"
    assert {route: names for route, names in asked.items() if len(names) > 1} == {}
