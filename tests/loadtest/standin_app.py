"""A stand-in for the ticket-cart HTTP API, in memory, for testing the load tool only.

It speaks the same paths, bodies, headers and problem codes as docs/design.md's API table, so
the generator can be tested without Redis or PostgreSQL. It is never a model of the real
service's internals. Run: ``uvicorn tests.loadtest.standin_app:app --workers 1``.
"""

from __future__ import annotations

import os
import re
import uuid

import msgspec

ADMIN_KEY = os.environ.get("ADMIN_API_KEY", "standin-admin-key")

tiers: dict[str, dict] = {}
carts: dict[str, dict] = {}
promos: dict[str, dict] = {}
orders: dict[str, dict] = {}
orders_by_key: dict[tuple[str, str], str] = {}


class Problem(Exception):
    def __init__(self, status: int, code: str, **extra: object) -> None:
        self.status, self.code, self.extra = status, code, extra


def inventory(tier: dict) -> dict:
    available = max(0, tier["total"] - tier["sold"] - tier["held"])
    return {"total": tier["total"], "sold": tier["sold"], "held": tier["held"], "available": available}


def tier_or_404(tier_id: str) -> dict:
    if tier_id not in tiers:
        raise Problem(404, "tier-not-found")
    return tiers[tier_id]


def cart_view(cart_id: str) -> dict:
    cart = carts.get(cart_id, {"items": {}, "promo": None})
    items = [
        {
            "tier_id": t,
            "event_id": tiers[t]["event_id"],
            "name": tiers[t]["name"],
            "quantity": q,
            "unit_price": tiers[t]["price"],
            "line_total": q * tiers[t]["price"],
        }
        for t, q in cart["items"].items()
    ]
    subtotal = sum(i["line_total"] for i in items)
    return {
        "items": items,
        "item_count": sum(cart["items"].values()),
        "currency": "VND",
        "subtotal": subtotal,
        "discount": 0,
        "total": subtotal,
        "promo_code": cart["promo"],
    }


def set_quantity(cart: dict, tier_id: str, quantity: int) -> None:
    tier = tier_or_404(tier_id)
    if quantity > tier["max_per_order"]:
        raise Problem(409, "limit-exceeded")
    delta = quantity - cart["items"].get(tier_id, 0)
    if delta > inventory(tier)["available"]:
        raise Problem(409, "sold-out", available=inventory(tier)["available"])
    tier["held"] += delta
    if quantity:
        cart["items"][tier_id] = quantity
    else:
        cart["items"].pop(tier_id, None)


def release(cart: dict) -> None:
    for tier_id, quantity in cart["items"].items():
        tiers[tier_id]["held"] -= quantity
    cart["items"] = {}


def checkout(cart_id: str, cart: dict, body: dict, key: str | None) -> tuple[int, dict]:
    if key and (cart_id, key) in orders_by_key:
        return 201, orders[orders_by_key[(cart_id, key)]]
    if not cart["items"]:
        raise Problem(409, "cart-empty")
    promo = promos.get(cart["promo"]) if cart["promo"] else None
    if promo and promo["max_uses"] is not None and promo["used"] >= promo["max_uses"]:
        raise Problem(409, "promo-exhausted")
    if promo:
        promo["used"] += 1
    order_id = str(uuid.uuid4())
    items = [{"tier_id": t, "quantity": q} for t, q in cart["items"].items()]
    for tier_id, quantity in cart["items"].items():
        tiers[tier_id]["held"] -= quantity
        tiers[tier_id]["sold"] += quantity
    cart["items"] = {}
    order = {
        "id": order_id,
        "status": "pending_payment",
        "email": body.get("email"),
        "items": items,
        "cart_id": cart_id,
        "tickets": [{"tier_id": i["tier_id"]} for i in items for _ in range(i["quantity"])],
        "payment": {"code": order_id[:8].upper(), "amount": 0, "due_at": None},
    }
    orders[order_id] = order
    if key:
        orders_by_key[(cart_id, key)] = order_id
    return 201, order


def handle(method: str, path: str, headers: dict[str, str], body: dict) -> tuple[int, dict, dict]:
    """Route one request; returns (status, body, extra headers)."""
    if path in ("/health/live", "/health/ready"):
        return 200, {"status": "ok"}, {}
    if match := re.fullmatch(r"/api/admin/tiers/([0-9a-f-]{36})", path):
        if headers.get("x-admin-key") != ADMIN_KEY:
            raise Problem(401, "unauthorized")
        tier_id = match[1]
        if method == "PUT":
            created = tier_id not in tiers
            old = tiers.get(tier_id, {"sold": 0, "held": 0})
            tiers[tier_id] = {
                "event_id": body["event_id"],
                "name": body["name"],
                "price": body["price"],
                "total": body["quantity_total"],
                "max_per_order": body["max_per_order"],
                "sold": old["sold"],
                "held": old["held"],
            }
            return (201 if created else 200), {"id": tier_id}, {}
        tier = tier_or_404(tier_id)
        return 200, {"id": tier_id, "inventory": {**inventory(tier), "sold_db": tier["sold"]}}, {}
    if path == "/api/admin/promo-codes" and method == "POST":
        if headers.get("x-admin-key") != ADMIN_KEY:
            raise Problem(401, "unauthorized")
        promos[body["code"]] = {"max_uses": body.get("max_uses"), "used": 0}
        return 201, {"code": body["code"]}, {}
    if match := re.fullmatch(r"/api/tiers/([0-9a-f-]{36})/availability", path):
        return 200, {"available": inventory(tier_or_404(match[1]))["available"]}, {}

    cart_id = headers.get("x-cart-token") or ""
    if cart_id and cart_id not in carts:
        raise Problem(401, "invalid-cart-token")
    if not cart_id and method != "GET":
        cart_id = uuid.uuid4().hex
        carts[cart_id] = {"items": {}, "promo": None}
    cart = carts.get(cart_id, {"items": {}, "promo": None})
    token = {"x-cart-token": cart_id} if cart_id else {}
    if path == "/api/cart/items" and method == "POST":
        set_quantity(cart, body["tier_id"], cart["items"].get(body["tier_id"], 0) + body["quantity"])
    elif match := re.fullmatch(r"/api/cart/items/([0-9a-f-]{36})", path):
        set_quantity(cart, match[1], body["quantity"] if method == "PUT" else 0)
    elif path == "/api/cart" and method == "DELETE":
        release(cart)
    elif path == "/api/cart/promo" and method == "POST":
        if body["code"] not in promos:
            raise Problem(422, "invalid-promo", reason="unknown")
        cart["promo"] = body["code"]
    elif path == "/api/orders" and method == "POST":
        status, order = checkout(cart_id, cart, body, headers.get("idempotency-key"))
        return status, order, token
    elif not (path == "/api/cart" and method == "GET"):
        raise Problem(404, "not-found")
    return 200, cart_view(cart_id), token


async def app(scope: dict, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    content_type = b"application/json"
    try:
        body = msgspec.json.decode(raw) if raw else {}
        status, payload, extra = handle(scope["method"], scope["path"], headers, body)
    except Problem as problem:
        status, extra, content_type = problem.status, {}, b"application/problem+json"
        payload = {"status": problem.status, "code": problem.code, "title": problem.code, **problem.extra}
    out = msgspec.json.encode(payload)
    response_headers = [(b"content-type", content_type), (b"content-length", str(len(out)).encode())]
    response_headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": out})
