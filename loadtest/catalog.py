"""The tiers and promo codes a load test sells, created fresh through the admin API.

Every run makes its own events and tiers (new UUIDs), so runs never share inventory and
the invariant check can compare what the buyers saw with what the server counts. This
module only plans and creates the catalogue; it never touches carts.
"""

from __future__ import annotations

import secrets
import uuid

import msgspec

from loadtest.client import Connection, ConnectionFailed, Response, Target, encode_request

# Large enough that browsing scenarios never sell out during a run.
ROOMY_TOTAL = 1_000_000
# Checkouts spread over many tiers: 64 at once rarely wait for one tier row (1 in 5 shares
# its tier with another), so the rate is the checkout's own, not the tier lock's.
SPREAD_EVENTS, SPREAD_TIERS_PER_EVENT = 16, 16
# Ids are derived from the run id, so processes that share a run id (Locust workers) plan
# the same catalogue and their PUTs agree.
_ID_SPACE = uuid.UUID("6b1f4c3e-2d5a-4f7e-9c1b-0a8d7e6f5c4b")


def _id(run_id: str, *parts: object) -> str:
    return str(uuid.uuid5(_ID_SPACE, "/".join(map(str, (run_id, *parts)))))


class SetupError(RuntimeError):
    """The admin API refused or failed a setup call; the message has its answer."""


class Tier(msgspec.Struct, frozen=True):
    id: str
    event_id: str
    name: str
    total: int
    price: int
    max_per_order: int


class Catalog(msgspec.Struct, frozen=True):
    run_id: str
    tiers: tuple[Tier, ...] = ()
    # Valid codes; the first has no use limit, the second a small one (so checkouts
    # can meet promo-exhausted), and invalid_promo exists nowhere.
    promo_codes: tuple[str, ...] = ()
    limited_promo_uses: int = 0
    invalid_promo: str = ""

    @property
    def tier_ids(self) -> list[str]:
        return [t.id for t in self.tiers]


def plan_catalog(
    kind: str, *, seats: int, events: int = 4, tiers_per_event: int = 6, run_id: str | None = None
) -> Catalog:
    """Decide ids and sizes, without calling anything.

    ``kind``: "none" (no tiers), "flash" (one tier of ``seats`` seats), "roomy" (many tiers
    over several events, never sold out), "promo" (roomy, plus promo codes), "spread"
    (as roomy, with 256 tiers over 16 events).
    """
    run_id = run_id or secrets.token_hex(4).upper()
    if kind == "none":
        return Catalog(run_id=run_id)
    if kind == "flash":
        event = _id(run_id, "flash")
        tier = Tier(_id(run_id, "flash", 0), event, f"loadtest {run_id} flash", seats, 500_000, 10)
        return Catalog(run_id=run_id, tiers=(tier,))
    if kind == "spread":
        events, tiers_per_event = SPREAD_EVENTS, SPREAD_TIERS_PER_EVENT
    tiers = []
    for e in range(events):
        event = _id(run_id, kind, e)
        for t in range(tiers_per_event):
            name = f"loadtest {run_id} event {e} tier {t}"
            price = 100_000 * (t + 1)
            tiers.append(Tier(_id(run_id, kind, e, t), event, name, ROOMY_TOTAL, price, 50))
    if kind in ("roomy", "spread"):
        return Catalog(run_id=run_id, tiers=tuple(tiers))
    if kind == "promo":
        return Catalog(
            run_id=run_id,
            tiers=tuple(tiers),
            promo_codes=(f"LT{run_id}PCT", f"LT{run_id}FIX"),
            limited_promo_uses=25,
            invalid_promo=f"LT{run_id}NONE",
        )
    raise ValueError(f"unknown catalogue kind {kind!r}")


class AdminApi:
    """The few admin calls a load test needs, on one keep-alive connection."""

    def __init__(self, target: Target, admin_key: str, extra_headers: dict[str, str]) -> None:
        self.target = target
        self.headers = {"X-Admin-Key": admin_key, **extra_headers}
        self.connection = Connection(target, timeout=30.0)

    async def call(self, method: str, path: str, body: object = None) -> Response:
        raw_body = msgspec.json.encode(body) if body is not None else None
        raw = encode_request(self.target, method, path, self.headers, raw_body)
        try:
            return await self.connection.send(raw)
        except (ConnectionFailed, TimeoutError) as exc:
            raise SetupError(f"{method} {path}: {exc}") from exc

    async def put_tier(self, tier: Tier) -> None:
        body = {
            "event_id": tier.event_id,
            "name": tier.name,
            "price": tier.price,
            "currency": "VND",
            "quantity_total": tier.total,
            "max_per_order": tier.max_per_order,
        }
        answer = await self.call("PUT", f"/api/admin/tiers/{tier.id}", body)
        _expect(answer, f"PUT /api/admin/tiers/{tier.id}", 200, 201)

    async def create_promo(self, code: str, kind: str, value: int, max_uses: int | None) -> None:
        body: dict[str, object] = {"code": code, "kind": kind, "value": value}
        if kind == "fixed":
            body["currency"] = "VND"  # the tiers' (put_tier)
        if max_uses is not None:
            body["max_uses"] = max_uses
        answer = await self.call("POST", "/api/admin/promo-codes", body)
        _expect(answer, "POST /api/admin/promo-codes", 200, 201)

    async def tier_inventory(self, tier_id: str) -> dict[str, object]:
        answer = await self.call("GET", f"/api/admin/tiers/{tier_id}")
        _expect(answer, f"GET /api/admin/tiers/{tier_id}", 200)
        data = answer.json()
        if not isinstance(data, dict):
            raise SetupError(f"GET /api/admin/tiers/{tier_id}: the answer is not a JSON object")
        return data

    async def create_catalog(self, catalog: Catalog) -> None:
        for tier in catalog.tiers:
            await self.put_tier(tier)
        if catalog.promo_codes:
            unlimited, limited = catalog.promo_codes
            await self.create_promo(unlimited, "percent", 10, None)
            await self.create_promo(limited, "fixed", 20_000, catalog.limited_promo_uses)

    def close(self) -> None:
        self.connection.close()


def _expect(answer: Response, what: str, *statuses: int) -> None:
    if answer.status not in statuses:
        detail = answer.body[:300].decode("utf-8", "replace")
        raise SetupError(f"{what} answered {answer.status}: {detail}")
